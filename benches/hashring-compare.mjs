// Compare a consistent-hash lookup in JavaScript (npm `hashring`, the usual
// choice in Node) with Switchyard's native ring. The native numbers come from
// criterion (`cargo bench -p switchyard-core --bench algorithms`, group
// `pick/consistent_hash`); this prints the JS side for the same pool sizes.
// Usage: node benches/hashring-compare.mjs
import HashRing from 'hashring';

// More distinct keys than hashring's LRU cache (5,000) holds, so lookups are real.
const keys = Array.from({ length: 1 << 16 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`);
for (const n of [10, 100, 1000]) {
  const servers = {};
  for (let i = 0; i < n; i++) servers[`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:8080`] = { weight: 1 + (i % 3) };
  const ring = new HashRing(servers, 'md5');
  let sink = 0;
  for (let i = 0; i < 200_000; i++) sink += ring.get(keys[i & 0xffff]).length; // warm up
  const iterations = 2_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += ring.get(keys[i & 0xffff]).length;
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  console.log(`hashring (JS, md5) lookup, ${n} backends: ${ns.toFixed(1)} ns${sink < 0 ? '' : ''}`);
}
