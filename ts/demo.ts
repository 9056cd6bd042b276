/**
 * `switchyard demo`: three small HTTP backends in this process and a balancer
 * in front of them, so a new user sees traffic move without writing a config.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SwitchyardConfig } from './config/types.js';
import type { Logger } from './log.js';
import { Switchyard } from './switchyard.js';

/** A running demo: the balancer and its backends. */
export interface Demo {
  lb: Switchyard;
  url: string;
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

/** Start three backends and a balancer on `127.0.0.1:port` (0 = any free port). */
export async function startDemo(port: number, logger: Logger): Promise<Demo> {
  const servers = await Promise.all([1, 2, 3].map(backend));
  const config: SwitchyardConfig = {
    listeners: { demo: { address: `127.0.0.1:${port}`, pool: 'demo', access_log: true } },
    pools: {
      demo: {
        backends: servers.map((s) => ({ address: `127.0.0.1:${(s.address() as AddressInfo).port}` })),
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
  const url = `http://${lb.address('demo').address}/`;
  return {
    lb,
    url,
    async stop() {
      await lb.close({ drainMs: 1000 });
      servers.forEach((s) => s.closeAllConnections());
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
