#!/usr/bin/env node
// The plain Node TCP proxy of the benchmark: what a Node user writes by hand.
// net.createServer + socket.pipe both ways, round robin over the backends; with --workers N > 1
// it runs N node:cluster workers sharing the listening socket (SCHED_NONE: the kernel hands out
// connections; Node's default on Linux, SCHED_RR, passes every accepted connection from the
// primary to a worker over IPC and measured about half the connection rate here, so it would
// make this baseline look worse than what a careful Node user gets).
//
//   node benches/node-proxy.mjs --workers 2 \
//     --listen 127.0.0.1:8080=127.0.0.1:9001,127.0.0.1:9002 --listen 127.0.0.1:8081=127.0.0.1:5201
import cluster from 'node:cluster';
import net from 'node:net';

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

function hostPort(s) {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
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
if (opts.workers > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < opts.workers; i++) cluster.fork();
  cluster.on('exit', () => process.exit(1));
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  for (const l of opts.listen) serve(l);
}
