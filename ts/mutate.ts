/**
 * Small, validated changes to a resolved configuration: the operations behind
 * the admin API and the library's backend methods. Each returns a new config
 * (the old one is never modified), so applying it stays all-or-nothing.
 */
import { ALGORITHMS, BACKEND_STATES, validateConfig } from './config/validate.js';
import { Checker, parseAddress } from './config/checker.js';
import type { Algorithm, BackendConfig, BackendState, ResolvedBackend, ResolvedConfig, ResolvedPool } from './config/types.js';
import { LIMITS } from './binding/catalog.generated.js';
import { ConfigError, NotFoundError, SwitchyardError } from './errors.js';

/** A copy of `config` with pool `pool` replaced by `change(copy of the pool)`. */
function withPool(config: ResolvedConfig, pool: string, change: (p: ResolvedPool) => ResolvedPool): ResolvedConfig {
  const i = config.pools.findIndex((p) => p.name === pool);
  if (i < 0) throw new NotFoundError('SWITCHYARD_ERR_NOT_FOUND', `no pool named "${pool}"`);
  const pools = config.pools.slice();
  pools[i] = change(structuredClone(config.pools[i]!));
  return { ...config, pools };
}

function findBackend(p: ResolvedPool, address: string): ResolvedBackend {
  const b = p.backends.find((x) => x.address === canonical(address));
  if (!b) throw new NotFoundError('SWITCHYARD_ERR_NOT_FOUND', `pool "${p.name}" has no backend ${address}`);
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

/** Check one value with the validator's own rules (same messages); its issues become a `ConfigError`. */
function checked<T>(source: string, check: (c: Checker) => T): T {
  const c = new Checker();
  const value = check(c);
  if (c.issues.length > 0) throw new ConfigError(source, c.issues);
  return value;
}

/** The canonical form of an address as the validator writes it (e.g. `[::1]:80`). */
export function canonical(address: string): string {
  const parsed = parseAddress(address, 1);
  return typeof parsed === 'string' ? address : parsed.text;
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
  const { min, max } = LIMITS.weight;
  const valid = checked(`pools.${pool}.backends[${address}]`, (c) => c.int(weight, 'weight', min, max, 0));
  return withPool(config, pool, (p) => {
    findBackend(p, address).weight = valid;
    return p;
  });
}

export function setState(config: ResolvedConfig, pool: string, address: string, state: BackendState): ResolvedConfig {
  const valid = checked(`pools.${pool}.backends[${address}]`, (c) => c.oneOf(state, 'state', BACKEND_STATES, 'ready'));
  return withPool(config, pool, (p) => {
    findBackend(p, address).state = valid;
    return p;
  });
}

export function setAlgorithm(config: ResolvedConfig, pool: string, algorithm: Algorithm): ResolvedConfig {
  const valid = checked(`pools.${pool}`, (c) => c.oneOf(algorithm, 'algorithm', ALGORITHMS, 'round_robin'));
  // The pool's other options stay as they are; the data plane receives only those the new algorithm reads.
  return withPool(config, pool, (p) => ({ ...p, algorithm: valid }));
}

/** One backend field a reload changed from the runtime value, or kept at it. */
export interface RuntimeChange {
  pool: string;
  address: string;
  field: 'state' | 'weight';
  /** The value in force before the reload. */
  from: string | number;
  /** The value in force after it. */
  to: string | number;
  /** `declared`: the new config changed this field, and its value wins; `runtime`: the config
   * left the field as it was, so the value set at runtime is kept. */
  by: 'declared' | 'runtime';
}

/** Backend fields an operator changes at runtime and a reload must not silently revert. */
const RUNTIME_FIELDS = ['state', 'weight'] as const;

/**
 * `next` (a newly declared config) with the runtime's state and weight kept where the
 * declaration did not change them: per backend and field, when `next` holds the same value as
 * `declared` (the previous declaration), the value in `running` stays; when it differs, the new
 * declared value wins (HAProxy's server-state file rule). Returns what differs from `running`.
 */
export function keepRuntime(declared: ResolvedConfig, running: ResolvedConfig, next: ResolvedConfig): { config: ResolvedConfig; changes: RuntimeChange[] } {
  const changes: RuntimeChange[] = [];
  const pools = next.pools.map((p) => {
    const before = declared.pools.find((x) => x.name === p.name);
    const now = running.pools.find((x) => x.name === p.name);
    if (!now) return p;
    let copy: ResolvedPool | undefined;
    p.backends.forEach((b, i) => {
      const r = now.backends.find((x) => x.address === b.address);
      if (!r) return;
      const d = before?.backends.find((x) => x.address === b.address);
      for (const field of RUNTIME_FIELDS) {
        if (r[field] === b[field]) continue;
        if (d && d[field] === b[field]) {
          copy ??= structuredClone(p);
          (copy.backends[i]! as Record<typeof field, unknown>)[field] = r[field];
          changes.push({ pool: p.name, address: b.address, field, from: r[field], to: r[field], by: 'runtime' });
        } else {
          changes.push({ pool: p.name, address: b.address, field, from: r[field], to: b[field], by: 'declared' });
        }
      }
    });
    return copy ?? p;
  });
  return { config: { ...next, pools }, changes };
}

/** `change` as a backend event: `weight 1→5 (file)`, `state drain→ready (file)`, `state drain kept (runtime)`.
 * `source` names the declaration (`file` on a reload, `config` for `update`). */
export function describeChange(c: RuntimeChange, source: string): { pool: string; address: string; kind: string; reason: string } {
  const { pool, address, field, from, to } = c;
  if (c.by === 'runtime') return { pool, address, kind: 'kept', reason: `${field} ${to} kept (runtime)` };
  return { pool, address, kind: field === 'state' ? String(to) : 'weight', reason: `${field} ${from}→${to} (${source})` };
}
