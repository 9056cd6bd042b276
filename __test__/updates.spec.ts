// Granular updates: a change replaces the smallest thing that changed. Weight and state changes
// touch only their pool (no file is read, no TLS config rebuilt); a full update rebuilds only
// pools whose tables changed and TLS configs whose certificate bytes changed. The data plane
// counts what it built (`stats().builds`), and these tests hold it to that.
import { renameSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Switchyard, type SwitchyardConfig } from '../ts/index.js';
import { TestCa, type Leaf } from './certs.js';
import { connect, readLine, tagged, type Peer } from './helpers.js';

let ca: TestCa;
let leaf: Leaf;
let one: Peer;
let two: Peer;

beforeAll(async () => {
  ca = new TestCa();
  leaf = ca.leaf(['granular.example.com'], { file: 'granular' });
  [one, two] = await Promise.all([tagged('one'), tagged('two')]);
});
afterAll(async () => {
  await Promise.all([one?.close(), two?.close()]);
});

/** A TLS listener on pool `web`, a plain one on pool `api`. */
function config(weights: [number, number] = [1, 1]): SwitchyardConfig {
  return {
    listeners: {
      secure: { address: '127.0.0.1:0', pool: 'web', tls: { certificates: [{ cert: leaf.chain, key: leaf.key }] } },
      plain: { address: '127.0.0.1:0', pool: 'api' },
    },
    pools: {
      web: { backends: [{ address: one.address }] },
      api: {
        algorithm: 'weighted_round_robin',
        backends: [
          { address: one.address, weight: weights[0] },
          { address: two.address, weight: weights[1] },
        ],
      },
    },
  };
}

/** Which backend the next `n` connections to `port` reach. */
async function spread(port: number, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const s = await connect(port);
    const tag = await readLine(s);
    seen[tag] = (seen[tag] ?? 0) + 1;
    s.destroy();
  }
  return seen;
}

describe('granular updates', () => {
  it('a weight change rebuilds one pool and no TLS config, and works while a certificate file is missing', async () => {
    const lb = await Switchyard.start(config());
    try {
      expect(lb.stats().builds).toEqual({ pools: 2, tls_configs: 1 });
      // A rotation in progress: the certificate file is gone for the moment.
      renameSync(leaf.chain, `${leaf.chain}.moved`);
      try {
        await lb.setWeight('api', two.address, 0);
        expect(lb.stats().builds).toEqual({ pools: 3, tls_configs: 1 });
        expect(await spread(lb.address('plain').port, 4)).toEqual({ one: 4 });
        await lb.drain('api', one.address);
        await lb.setWeight('api', two.address, 3);
        expect(lb.stats().builds).toEqual({ pools: 5, tls_configs: 1 });
        expect(await spread(lb.address('plain').port, 3)).toEqual({ two: 3 });
        // A full update needs the file, and says which one is missing; nothing changes.
        await expect(lb.update(config())).rejects.toThrow(leaf.chain);
        expect(lb.stats().builds).toEqual({ pools: 5, tls_configs: 1 });
      } finally {
        renameSync(`${leaf.chain}.moved`, leaf.chain);
      }
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('a full update rebuilds only the pools and TLS configs that changed', async () => {
    const lb = await Switchyard.start(config());
    try {
      await lb.update(config());
      expect(lb.stats().builds, 'the same config again rebuilds nothing').toEqual({ pools: 2, tls_configs: 1 });
      await lb.update(config([2, 1]));
      expect(lb.stats().builds, 'a weight in pool api rebuilds api only').toEqual({ pools: 3, tls_configs: 1 });
      const renewed = ca.leaf(['granular.example.com'], { file: 'granular-renewed' });
      const next = config([2, 1]);
      next.listeners.secure!.tls = { certificates: [{ cert: renewed.chain, key: renewed.key }] };
      await lb.update(next);
      expect(lb.stats().builds, 'new certificate bytes rebuild that TLS config, no pool').toEqual({ pools: 3, tls_configs: 2 });
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});
