#!/usr/bin/env node
// The plain Node TCP proxy of the benchmark: what a Node user writes by hand.
// net.createServer + socket.pipe both ways, round robin over the backends; with --workers N > 1
// it runs N node:cluster workers sharing the listening socket (SCHED_NONE, see lib/node-cluster.mjs).
//
//   node benches/node-proxy.mjs --workers 2 \
//     --listen 127.0.0.1:8080=127.0.0.1:9001,127.0.0.1:9002 --listen 127.0.0.1:8081=127.0.0.1:5201
import net from 'node:net';
import { hostPort, runWorkers } from './lib/node-cluster.mjs';

function parseArgs(argv) {
  const opts = { workers: 1, listen: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--workers') opts.workers = Number(argv[++i]);
    else if (a === '--listen') {
      const [front, backs] = argv[++i].split('=');
      opts.listen.push({ front: hostPort(front), backends: backs.split(',').map(hostPort) });
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.listen.length) throw new Error('at least one --listen FRONT=BACKEND[,BACKEND...] is needed');
  return opts;
}

function serve({ front, backends }) {
  let next = 0;
  const server = net.createServer({ noDelay: true }, (client) => {
    const b = backends[next];
    next = (next + 1) % backends.length;
    const upstream = net.connect({ host: b.host, port: b.port, noDelay: true });
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
  });
  server.listen({ host: front.host, port: front.port, backlog: 4096 });
  return server;
}

const opts = parseArgs(process.argv.slice(2));
runWorkers(opts.workers, () => {
  for (const l of opts.listen) serve(l);
});
