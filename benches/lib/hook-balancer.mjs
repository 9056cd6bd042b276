// The balancer of benches/hook-cost.mjs, in a process of its own: three HTTP listeners in
// front of the same backend pool, the same catch-all route (a) without a hook, (b) with a
// synchronous hook, (c) with an async one; and two tcp listeners, (d) without a rule, (e) with
// a catch-all policy rule asking the synchronous hook per connection. The hooks answer {} (keep
// the route's or rule's pool), so the variants differ only by the hook call. On SIGTERM it prints the hook counters (JSON, one
// line) and closes.
//
//   node benches/lib/hook-balancer.mjs BASE_PORT BACKEND_ADDRESS BUDGET
import { Switchyard } from '../../dist/index.js';

const [basePort, backend, budget] = process.argv.slice(2);
const port = (i) => `127.0.0.1:${Number(basePort) + i}`;
const route = (hook) => ({ pool: 'app', ...(hook ? { hook: { name: hook, budget, fallback: {} } } : {}) });
const listener = (i, hook) => ({ address: port(i), protocol: 'http', routes: [route(hook)] });

const lb = await Switchyard.start(
  {
    workers: 1,
    listeners: {
      plain: listener(0),
      sync: listener(1, 'sync'),
      async: listener(2, 'async'),
      tcp: { address: port(3), pool: 'app' },
      tcpSync: { address: port(4), pool: 'app' },
    },
    pools: { app: { backends: [{ address: backend }] } },
    policy: { rules: { tcpSync: [{ name: 'every-connection', hook: { name: 'sync', budget, fallback: {} } }] } },
  },
  {
    hooks: {
      sync: () => ({}),
      async: async () => {
        await Promise.resolve();
        return {};
      },
    },
  },
);
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify(lb.stats().hooks)}\n`);
  lb.close({ drainMs: 0 }).then(() => process.exit(0));
});
