#!/usr/bin/env node
// The load client of the grpc-unary workload: N concurrent unary calls (each loop sends its next
// call when the previous one answered) over ONE @grpc/grpc-js channel, so one HTTP/2 connection,
// for D seconds; prints one JSON line: { calls, errors, first_error, seconds, rps, p50_ms, p99_ms }.
//
//   node grpc-load.mjs --target 127.0.0.1:PORT [--concurrency 32] [--duration 10] [--payload 64]
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import { ECHO_SERVICE } from './grpc-echo-server.mjs';

/** The generic client of bench.Echo (raw bytes). */
export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

/** One channel of its own: clients with the same options would otherwise share a subchannel. */
export function echoClient(target) {
  return new EchoClient(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

/** One unary call; resolves with the answer, rejects with the gRPC error. */
export function echoOnce(client, payload, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    client.echo(payload, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The p-quantile (0..1) of sorted `xs`, nearest rank. */
function quantile(xs, p) {
  if (!xs.length) return null;
  return xs[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)];
}

async function main() {
  const o = { target: null, concurrency: 32, duration: 10, payload: 64 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o)) throw new Error(`unknown option ${argv[i]}`);
    o[k] = k === 'target' ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!o.target) throw new Error('--target host:port is required');
  const client = echoClient(o.target);
  const payload = Buffer.alloc(o.payload, 'x');
  const lat = [];
  let errors = 0;
  let firstError = null;
  const t0 = process.hrtime.bigint();
  const end = Date.now() + o.duration * 1000;
  const loop = async () => {
    while (Date.now() < end) {
      const s = process.hrtime.bigint();
      try {
        const r = await echoOnce(client, payload);
        if (r.length !== payload.length) throw new Error(`answer of ${r.length} bytes, sent ${payload.length}`);
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      } catch (e) {
        errors++;
        firstError ??= e.message;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, loop));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  client.close();
  lat.sort((a, b) => a - b);
  const out = { calls: lat.length, errors, first_error: firstError, seconds, rps: lat.length / seconds, p50_ms: quantile(lat, 0.5), p99_ms: quantile(lat, 0.99) };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`grpc-load: ${e.message}\n`);
    process.exit(1);
  });
}
