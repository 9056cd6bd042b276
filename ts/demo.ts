/**
 * `switchyard demo`: three small HTTP backends in this process and a balancer
 * in front of them, so a new user sees traffic move without writing a config:
 * a TCP listener (round robin over the three) and an HTTP listener that routes
 * requests by header and path, over HTTP/1.1 and HTTP/2 (h2c), with two policy rules
 * (a redirect and a rate class) compiled into its route table.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SwitchyardConfig } from './config/types.js';
import type { Logger } from './log.js';
import { Switchyard } from './switchyard.js';

/** A running demo: the balancer and its backends. */
export interface Demo {
  lb: Switchyard;
  /** The TCP listener (round robin over every backend). */
  url: string;
  /** The HTTP listener (routes: `X-Canary: true` → backend 3, `/api/` → backends 1 and 2, else all three). */
  httpUrl: string;
  stop(): Promise<void>;
}

function backend(n: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from demo backend ${n} (${req.method} ${req.url})\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Start three backends and a balancer: TCP on `127.0.0.1:port`, HTTP on `port + 1`
 * (0 = any free ports).
 */
export async function startDemo(port: number, logger: Logger): Promise<Demo> {
  const servers = await Promise.all([1, 2, 3].map(backend));
  const [b1, b2, b3] = servers.map((s) => ({ address: `127.0.0.1:${(s.address() as AddressInfo).port}` }));
  const config: SwitchyardConfig = {
    listeners: {
      demo: { address: `127.0.0.1:${port}`, pool: 'demo', access_log: true },
      'demo-http': {
        address: `127.0.0.1:${port === 0 ? 0 : port + 1}`,
        protocol: 'http',
        access_log: true,
        // HTTP/2 with prior knowledge beside HTTP/1.1: each stream is balanced on its own.
        http: { h2c: true },
        // First match wins; what no route takes goes to the listener's pool.
        routes: [
          { name: 'canary', match: { header: { 'x-canary': 'true' } }, pool: 'canary' },
          { name: 'api', match: { path_prefix: '/api/' }, pool: 'api' },
        ],
        pool: 'demo',
      },
    },
    pools: {
      demo: { backends: [b1!, b2!, b3!] },
      api: { backends: [b1!, b2!] },
      canary: { backends: [b3!] },
    },
    // Policy rules: compiled into demo-http's route table, before its routes (docs/rules.md).
    policy: {
      rate_classes: { login: { limit: 3, per: '1m' } },
      rules: {
        'demo-http': [
          { name: 'old-docs', match: { path_prefix: '/docs/' }, redirect: { prefix: 'https://github.com/switchyard-lb/switchyard/tree/main', status: 301 } },
          { name: 'login', match: { path: '/login', method: 'POST' }, rate_class: 'login', tag: 'auth' },
        ],
      },
    },
  };
  let lb: Switchyard;
  try {
    lb = await Switchyard.start(config, { logger, source: 'demo' });
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw err;
  }
  return {
    lb,
    url: `http://${lb.address('demo').address}/`,
    httpUrl: `http://${lb.address('demo-http').address}/`,
    async stop() {
      await lb.close({ drainMs: 1000 });
      servers.forEach((s) => s.closeAllConnections());
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

/** What `switchyard demo` prints once it runs: where everything is and the curl commands to try. */
export function demoBanner(d: Demo): string {
  const backends = d.lb.config.pools.find((p) => p.name === 'demo')!.backends.map((b) => b.address);
  return (
    `\nSwitchyard demo is running.\n` +
    `  balancer: ${d.url}  (tcp: round robin over the three backends)\n` +
    `  http:     ${d.httpUrl}  (http: routes by header and path)\n` +
    `  backends: ${backends.join(', ')}\n\n` +
    `Try:  for i in 1 2 3 4 5 6; do curl -s ${d.url}; done\n` +
    `Each request lands on the next backend (round robin).\n\n` +
    `HTTP routing (first match wins):\n` +
    `  curl -s -H 'X-Canary: true' ${d.httpUrl}api/users       # route canary: backend 3\n` +
    `  curl -s ${d.httpUrl}api/users ${d.httpUrl}api/users     # route api: backends 1 and 2\n` +
    `  curl -s ${d.httpUrl}index.html                           # the default route: all three\n` +
    `  curl -si ${d.httpUrl}api/users                          # with the response head\n` +
    `  curl -s --http2-prior-knowledge ${d.httpUrl}api/users   # HTTP/2 (h2c): each stream balanced on its own\n\n` +
    `Policy rules (run in the data plane, before the routes):\n` +
    `  curl -si ${d.httpUrl}docs/rules.md | head -3             # rule old-docs: a 301 redirect\n` +
    `  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code} ' -X POST ${d.httpUrl}login; done  # rule login: 200 200 200 429\n\n` +
    `Every request is logged as an access line. Ctrl-C drains and stops.\n\n`
  );
}
