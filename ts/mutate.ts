/**
 * Small, validated changes to a resolved configuration: the operations behind
 * the admin API and the library's backend methods. Each returns a new config
 * (the old one is never modified), so applying it stays all-or-nothing.
 */
import { validateConfig } from './config/validate.js';
import type { Algorithm, BackendConfig, BackendState, ResolvedBackend, ResolvedConfig, ResolvedPool } from './config/types.js';
import { SwitchyardError } from './errors.js';

/** A copy of `config` with pool `pool` replaced by `change(copy of the pool)`. */
function withPool(config: ResolvedConfig, pool: string, change: (p: ResolvedPool) => ResolvedPool): ResolvedConfig {
  const i = config.pools.findIndex((p) => p.name === pool);
  if (i < 0) throw new SwitchyardError('SWITCHYARD_ERR_NOT_FOUND', `no pool named "${pool}"`);
  const pools = config.pools.slice();
  pools[i] = change(structuredClone(config.pools[i]!));
  return { ...config, pools };
}

function findBackend(p: ResolvedPool, address: string): ResolvedBackend {
  const b = p.backends.find((x) => x.address === canonical(address));
  if (!b) throw new SwitchyardError('SWITCHYARD_ERR_NOT_FOUND', `pool "${p.name}" has no backend ${address}`);
  return b;
}

/** Validate one backend exactly as a config file's would be (same messages, same defaults). */
export function resolveBackend(raw: BackendConfig | unknown, source = 'backend'): ResolvedBackend {
  const probe = validateConfig(
    { listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { backends: [raw] } } },
    source,
  );
  return probe.pools[0]!.backends[0]!;
}

/** The canonical form of an address as the validator writes it (e.g. `[::1]:80`). */
export function canonical(address: string): string {
  try {
    return resolveBackend({ address }).address;
  } catch {
    return address;
  }
}

export function addBackend(config: ResolvedConfig, pool: string, raw: BackendConfig): ResolvedConfig {
  const backend = resolveBackend(raw, `pools.${pool}.backends`);
  return withPool(config, pool, (p) => {
    // A backend without its own check gets the pool's.
    if (!backend.health_check && (raw as { health_check?: unknown }).health_check === undefined) backend.health_check = p.health_check;
    if (p.backends.some((b) => b.address === backend.address)) {
      throw new SwitchyardError('SWITCHYARD_ERR_CONFLICT', `pool "${pool}" already has backend ${backend.address}`);
    }
    p.backends.push(backend);
    return p;
  });
}

export function removeBackend(config: ResolvedConfig, pool: string, address: string): ResolvedConfig {
  return withPool(config, pool, (p) => {
    const b = findBackend(p, address);
    if (p.backends.length === 1) {
      throw new SwitchyardError('SWITCHYARD_ERR_CONFLICT', `cannot remove ${address}: it is the last backend of pool "${pool}"`);
    }
    p.backends = p.backends.filter((x) => x !== b);
    return p;
  });
}

export function setWeight(config: ResolvedConfig, pool: string, address: string, weight: number): ResolvedConfig {
  const checked = resolveBackend({ address: '127.0.0.1:1', weight }, `pools.${pool}.backends[${address}]`).weight;
  return withPool(config, pool, (p) => {
    findBackend(p, address).weight = checked;
    return p;
  });
}

export function setState(config: ResolvedConfig, pool: string, address: string, state: BackendState): ResolvedConfig {
  const checked = resolveBackend({ address: '127.0.0.1:1', state }, `pools.${pool}.backends[${address}]`).state;
  return withPool(config, pool, (p) => {
    findBackend(p, address).state = checked;
    return p;
  });
}

export function setAlgorithm(config: ResolvedConfig, pool: string, algorithm: Algorithm): ResolvedConfig {
  // Validate through the full validator so algorithm-specific options are re-checked.
  const probe = validateConfig(
    { listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { algorithm, backends: [{ address: '127.0.0.1:1' }] } } },
    `pools.${pool}`,
  );
  return withPool(config, pool, (p) => ({ ...p, algorithm: probe.pools[0]!.algorithm }));
}
