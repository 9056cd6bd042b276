#!/usr/bin/env node
// The Node HTTP reverse proxy of the benchmark: what a Node user builds with the `http-proxy`
// package. An http.Server per listener, an http.Agent with keepAlive to the backends (bounded
// idle sockets, like the other peers' backend pools), round robin; the routed listener picks
// the first route whose path prefix matches (404 otherwise). With --workers N > 1 it runs N
// node:cluster workers sharing the listening sockets (lib/node-cluster.mjs).
//
//   node benches/node-http-proxy.mjs --workers 1 --backends 127.0.0.1:9001,127.0.0.1:9002 \
//     --listen 127.0.0.1:8080 --routed 127.0.0.1:8083 --routes /r0/,/r1/
import http from 'node:http';
import httpProxy from 'http-proxy';
import { hostPort, runWorkers } from './lib/node-cluster.mjs';

function parseArgs(argv) {
  const opts = { workers: 1, listen: null, routed: null, backends: [], routes: [], maxIdle: 64 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--workers') opts.workers = Number(argv[++i]);
    else if (a === '--listen') opts.listen = hostPort(argv[++i]);
    else if (a === '--routed') opts.routed = hostPort(argv[++i]);
    else if (a === '--backends') opts.backends = argv[++i].split(',').map((b) => `http://${b}`);
    else if (a === '--routes') opts.routes = argv[++i].split(',');
    else if (a === '--max-idle') opts.maxIdle = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.backends.length || !(opts.listen || opts.routed)) throw new Error('--backends and --listen or --routed are needed');
  return opts;
}

function serve(opts) {
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: opts.maxIdle, keepAliveMsecs: 60000 });
  // xfwd: X-Forwarded-For/-Port/-Proto/-Host, as the other peers add forwarded headers too
  const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
  // Connection is hop-by-hop: http-proxy would forward the client's `Connection: close` to the
  // backend (which then closes, so no backend connection is ever reused) and copy the backend's
  // `Connection: keep-alive` to a client that asked to close. Drop both; http-proxy then answers
  // the client with the client's own Connection value.
  proxy.on('proxyReq', (proxyReq) => proxyReq.removeHeader('connection'));
  proxy.on('proxyRes', (proxyRes) => {
    delete proxyRes.headers.connection;
    delete proxyRes.headers['keep-alive'];
  });
  proxy.on('error', (err, req, res) => {
    if (res.headersSent || typeof res.writeHead !== 'function') return res.destroy?.();
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway');
  });
  let next = 0;
  const pick = () => {
    const target = opts.backends[next];
    next = (next + 1) % opts.backends.length;
    return target;
  };
  const listen = (addr, handler) => {
    const server = http.createServer(handler);
    server.keepAliveTimeout = 600000; // the other peers keep idle clients 600 s too
    server.listen({ host: addr.host, port: addr.port, backlog: 4096 });
  };
  if (opts.listen) listen(opts.listen, (req, res) => proxy.web(req, res, { target: pick() }));
  if (opts.routed) {
    listen(opts.routed, (req, res) => {
      // first match wins, like Switchyard's routes
      if (!opts.routes.some((prefix) => req.url.startsWith(prefix))) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('no route');
      }
      proxy.web(req, res, { target: pick() });
    });
  }
}

const opts = parseArgs(process.argv.slice(2));
runWorkers(opts.workers, () => serve(opts));
