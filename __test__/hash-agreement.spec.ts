/**
 * Several active balancers agree without talking to each other: with maglev and consistent_hash,
 * every process — and every version with the same table format — maps a key to the same backend,
 * whatever the order its backends are listed in. The golden table (fixtures/hash-agreement.json,
 * 10,000 keys) is checked in separate processes through the data plane's own selectors, and a
 * sample of its keys through two real balancers (one listing the backends in reverse) with real
 * source addresses on loopback.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from './cli-process.js';
import { stopAll } from './processes.js';

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, 'fixtures');
const GOLDEN = join(FIXTURES, 'hash-agreement.json');
type Algo = 'maglev' | 'consistent_hash';
interface Golden {
  hash_key: string;
  table_size: number;
  virtual_nodes: number;
  backends: { address: string; weight: number }[];
  keys: string[];
  expected: Record<Algo, number[]>;
}
const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Golden;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-hash-'));

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** The mapping computed by a separate process (`fixtures/hash-map.mjs`). */
async function mapIn(order?: 'reverse' | 'shuffle'): Promise<Record<Algo, number[]>> {
  const { stdout } = await run(process.execPath, [join(FIXTURES, 'hash-map.mjs'), GOLDEN, ...(order ? ['--order', order] : [])], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as Record<Algo, number[]>;
}

/** How many keys map elsewhere than the golden table says (and the first few, to read). */
function differences(got: number[], algo: Algo): { count: number; first: string[] } {
  const bad = golden.keys.flatMap((k, i) => (got[i] === golden.expected[algo][i] ? [] : [`${k}: ${got[i]} != ${golden.expected[algo][i]}`]));
  return { count: bad.length, first: bad.slice(0, 5) };
}

describe('hash agreement across processes', () => {
  it('the golden table covers 10,000 keys over every backend', () => {
    expect(golden.keys).toHaveLength(10_000);
    for (const algo of ['maglev', 'consistent_hash'] as const) {
      expect(new Set(golden.expected[algo]).size).toBe(golden.backends.length);
    }
  });

  it('two separate processes reproduce it exactly, and so does any order of the backends', async () => {
    const [a, b, reversed, shuffled] = await Promise.all([mapIn(), mapIn(), mapIn('reverse'), mapIn('shuffle')]);
    for (const got of [a, b, reversed, shuffled]) {
      for (const algo of ['maglev', 'consistent_hash'] as const) {
        expect(differences(got[algo], algo)).toEqual({ count: 0, first: [] });
      }
    }
  });

  it('two running balancers (one listing the backends in reverse) send real clients where the table says', async () => {
    // Backend i answers "i" on 127.7.0.(i+1):7001, the golden pool's addresses.
    const servers = await Promise.all(
      golden.backends.map(
        (b, i) =>
          new Promise<net.Server>((resolve, reject) => {
            const s = net.createServer((c) => c.end(`${i}\n`));
            s.once('error', reject);
            const [host, port] = [b.address.split(':')[0]!, Number(b.address.split(':')[1])];
            s.listen({ host, port }, () => resolve(s));
          }),
      ),
    );
    try {
      const pool = (algorithm: Algo, reverse: boolean) => ({
        algorithm,
        hash_key: golden.hash_key,
        ...(algorithm === 'maglev' ? { table_size: golden.table_size } : { virtual_nodes: golden.virtual_nodes }),
        backends: reverse ? [...golden.backends].reverse() : golden.backends,
      });
      const lbs = [false, true].map((reverse, n) => {
        const cfg = {
          workers: 1,
          listeners: { maglev: { address: '127.0.0.1:0', pool: 'maglev' }, ring: { address: '127.0.0.1:0', pool: 'ring' } },
          pools: { maglev: pool('maglev', reverse), ring: pool('consistent_hash', reverse) },
        };
        const f = join(dir, `lb${n}.json`);
        writeFileSync(f, JSON.stringify(cfg));
        return startCli(['start', '-c', f]);
      });
      // Every 40th IPv4 key: a real client from that source address.
      const sample = golden.keys.flatMap((k, i) => (k.startsWith('127.') && i % 40 === 0 ? [i] : []));
      for (const lb of lbs) {
        for (const [listener, algo] of [['maglev', 'maglev'], ['ring', 'consistent_hash']] as const) {
          const port = await lb.port(listener);
          const got = await Promise.all(sample.map((i) => ask(port, golden.keys[i]!)));
          const wrong = sample.filter((i, n) => got[n] !== golden.expected[algo][i]);
          expect({ listener, wrong: wrong.map((i) => golden.keys[i]) }).toEqual({ listener, wrong: [] });
        }
        await lb.kill();
      }
      expect(sample.length).toBeGreaterThan(200);
    } finally {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  });
});

/** Connect from `source` and read the backend's index. */
function ask(port: number, source: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: source });
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => resolve(Number(data.trim())));
    s.on('error', reject);
  });
}
