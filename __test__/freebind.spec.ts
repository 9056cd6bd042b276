/**
 * `freebind: true` (IP_FREEBIND): a listener binds an address no interface of this host holds,
 * as a standby balancer binds the virtual IP keepalived has not moved to it yet. 203.0.113.0/24
 * (TEST-NET-3) is on no interface of a test box. That the socket serves once the address arrives
 * is shown in `fleet.spec.ts` (network namespaces, keepalived moving the address).
 */
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { BindError, ConfigError, Switchyard, validateConfig, type SwitchyardConfig } from '../ts/index.js';

const NOT_HELD = { v4: '203.0.113.77', v6: '2001:db8::77' } as const;
/** IPv6 may be off on a CI box: the v6 cases need a v6 loopback. */
const HAS_V6 = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6' && i.internal));
const hostPort = (host: string) => (host.includes(':') ? `[${host}]:0` : `${host}:0`);

function config(protocol: 'tcp' | 'udp', host: string, freebind: boolean | undefined): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { vip: { address: hostPort(host), pool: 'p', protocol, ...(freebind === undefined ? {} : { freebind }) } },
    pools: { p: { backends: [{ address: '127.0.0.1:9' }] } },
  };
}

describe.runIf(process.platform === 'linux')('freebind', () => {
  const cases = (['tcp', 'udp'] as const).flatMap((protocol) => (['v4', 'v6'] as const).map((family) => [protocol, family] as const));
  for (const [protocol, family] of cases) {
    it.runIf(family === 'v4' || HAS_V6)(`${protocol} ${family}: an address this host does not hold is a BindError naming the option, and binds with freebind: true`, async () => {
      const host = NOT_HELD[family];
      const err = await Switchyard.start(config(protocol, host, undefined)).then(
        async (lb) => {
          await lb.close({ drainMs: 0 });
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BindError);
      expect((err as BindError).message).toContain(`listeners.vip: cannot bind ${hostPort(host)}`);
      expect((err as BindError).message).toContain('freebind: true');

      const lb = await Switchyard.start(config(protocol, host, true));
      try {
        const a = lb.address('vip');
        expect(a.host).toBe(host);
        expect(a.port).toBeGreaterThan(0);
      } finally {
        await lb.close({ drainMs: 0 });
      }
    });
  }

  it('is a boolean', () => {
    const raw = config('tcp', NOT_HELD.v4, true) as unknown as { listeners: { vip: Record<string, unknown> } };
    raw.listeners.vip.freebind = 'yes';
    expect(() => validateConfig(raw, 's')).toThrow(ConfigError);
    try {
      validateConfig(raw, 's');
    } catch (e) {
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual(['listeners.vip.freebind']);
    }
  });
});
