/**
 * The fleet's shared health view through a real etcd: three balancers check the same two
 * backends; one node cannot reach backend X that the other two can (its check goes to a refused
 * port), and two nodes cannot reach backend Y that the third can. Every node follows the
 * majority: X up and Y down everywhere. When the two others stop (their leases revoked), the
 * remaining node follows its own checks again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Switchyard, validateConfig, type SwitchyardConfig } from '../ts/index.js';
import { refusedPort, tagged, waitFor, type Peer } from './helpers.js';
import { HAS_ETCD, startEtcd, type EtcdServer } from './etcd.js';
import { majority } from '../ts/etcd/shared-health.js';

describe('majority', () => {
  it('more than half decides; a tie or no vote leaves the own verdict', () => {
    const v = (...xs: boolean[]) => new Map(xs.map((x, i) => [`n${i}`, x]));
    expect(majority(v(true, true, false), false)).toBe(true);
    expect(majority(v(false, false, true), true)).toBe(false);
    expect(majority(v(true, false), false)).toBe(false);
    expect(majority(v(), undefined)).toBe(undefined);
  });

  it('is off unless configured, and validated', () => {
    const base = { listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { backends: [{ address: '127.0.0.1:1' }] } } };
    expect(validateConfig({ ...base, etcd: { endpoints: ['http://127.0.0.1:2379'] } }, 's').etcd?.shared_health).toBeNull();
    const on = validateConfig({ ...base, etcd: { endpoints: ['http://127.0.0.1:2379'], shared_health: { node: 'n1', prefix: '/h' } } }, 's').etcd?.shared_health;
    expect(on).toEqual({ node: 'n1', prefix: '/h/', ttl_ms: 10_000 });
    expect(() => validateConfig({ ...base, etcd: { endpoints: ['http://127.0.0.1:2379'], shared_health: { node: 'a b' } } }, 's')).toThrow(/etcd.shared_health.node/);
  });
});

describe.runIf(HAS_ETCD)('shared health across three nodes', () => {
  let etcd: EtcdServer;
  let x: Peer, y: Peer;
  const lbs: Switchyard[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
    [x, y] = [await tagged('x'), await tagged('y')];
  });
  afterAll(async () => {
    await Promise.all(lbs.map((lb) => lb.close({ drainMs: 0 })));
    await etcd?.destroy();
    await Promise.all([x, y].map((p) => p?.close()));
  });

  it('a node follows the majority for a backend it alone cannot reach, and for one only it can', async () => {
    const refused = await refusedPort();
    const prefix = `/health-${process.pid}/`;
    // `blind`: the backends this node cannot reach (its check goes to a refused port).
    const config = (node: string, blind: Peer[]): SwitchyardConfig => ({
      workers: 1,
      listeners: { front: { address: '127.0.0.1:0', pool: 'web' } },
      pools: {
        web: {
          health_check: { type: 'tcp', interval: '100ms', timeout: '100ms', rise: 1, fall: 1 },
          backends: [x, y].map((p) => ({ address: p.address, ...(blind.includes(p) ? { health_check: { port: refused } } : {}) })),
        },
      },
      etcd: { endpoints: [etcd.endpoint], shared_health: { node, prefix, ttl: '3s' } },
    });
    lbs.push(await Switchyard.start(config('n1', [y])), await Switchyard.start(config('n2', [y])), await Switchyard.start(config('n3', [x])));
    const health = (lb: Switchyard) => Object.fromEntries(lb.stats().pools[0]!.backends.map((b) => [b.address === x.address ? 'x' : 'y', b.health]));
    const n3 = lbs[2]!;
    // The balancer's event history (kept from its start, so nothing is missed by subscribing late).
    const events = () => n3.events().map((e) => `${e.address === x.address ? 'x' : 'y'} ${e.kind}: ${e.reason}`);

    for (const lb of lbs) await waitFor(() => JSON.stringify(health(lb)) === JSON.stringify({ x: 'up', y: 'down' }), 'x up and y down on every node');
    // n3's own checks say the opposite; it follows the other two.
    const own = Object.fromEntries(n3.health().map((h) => [h.address === x.address ? 'x' : 'y', h.status]));
    expect(own).toEqual({ x: 'down', y: 'up' });
    await waitFor(() => events().includes('x up: fleet: up on 2 of 3 nodes (this node: down)'), 'the event of n3 following the fleet for x');
    await waitFor(() => events().includes('y down: fleet: down on 2 of 3 nodes (this node: up)'), 'the event of n3 following the fleet for y');

    // The others leave (their leases are revoked): n3 is alone and follows its own checks.
    await Promise.all(lbs.splice(0, 2).map((lb) => lb.close({ drainMs: 0 })));
    await waitFor(() => JSON.stringify(health(n3)) === JSON.stringify({ x: 'down', y: 'up' }), 'n3 to follow its own checks once alone');
  }, 60_000);
});
