/**
 * Connection limits in configuration: `max_connections` per backend (a pool's default, a
 * backend's own) and the pool's `queue` for clients that find every backend full (HAProxy
 * `maxconn`, `maxqueue`, `timeout queue`); who may connect to a listener: its `max_connections`,
 * `allow`/`deny` lists and `per_source` limits.
 */
import type { PerSourceConfig, QueueConfig } from '../binding/types.generated.js';
import { Checker, type Obj } from './checker.js';
import { DEFAULTS } from './defaults.js';
import { checkCidrs } from './cidr.js';
import { LISTENER, PER_SOURCE, POOL, QUEUE, keysOf } from './fields.js';
import type { ResolvedListener, ResolvedPool } from './types.js';

const MAX = POOL.fields.max_connections;
const Q = QUEUE.fields;

/** A pool's `max_connections` and `queue` (at `path`); the queue's timeout defaults to `connectTimeoutMs`. */
export function checkPoolLimits(c: Checker, p: Obj, path: string, connectTimeoutMs: number): { max_connections: number | null; queue: QueueConfig | null } {
  const max_connections = p.max_connections === undefined ? null : c.int(p.max_connections, `${path}.max_connections`, MAX.min, MAX.max, MAX.min);
  if (p.queue === undefined) return { max_connections, queue: null };
  const qpath = `${path}.queue`;
  const q = c.object(p.queue, qpath, 'an object such as { max: 100, timeout: "5s" }');
  if (!q) return { max_connections, queue: null };
  c.keys(q, keysOf(QUEUE), qpath);
  const max = c.int(q.max, `${qpath}.max`, Q.max.min, Q.max.max, DEFAULTS.queue_max);
  const timeout_ms = c.duration(q.timeout, `${qpath}.timeout`, Q.timeout.min, Q.timeout.max, connectTimeoutMs);
  return { max_connections, queue: { max, timeout_ms } };
}

/** A backend's own `max_connections` (at `path`), as a partial backend; `{}` when absent. */
export function backendLimit(c: Checker, raw: unknown, path: string): { max_connections?: number } {
  return raw === undefined ? {} : { max_connections: c.int(raw, path, MAX.min, MAX.max, MAX.min) };
}

/** A queue waits for a backend slot: it needs a limit on the pool or one of its backends. */
export function checkQueueUse(c: Checker, pools: readonly ResolvedPool[]): void {
  for (const p of pools) {
    if (p.queue && p.max_connections === null && !p.backends.some((b) => b.max_connections !== undefined)) {
      c.add(`pools.${p.name}.queue`, 'a queue holds clients while every backend is at its max_connections, but this pool sets no max_connections (on the pool or a backend)');
    }
  }
}

const LMAX = LISTENER.fields.max_connections;
const LIFE = LISTENER.fields.max_lifetime;
const JITTER = LISTENER.fields.max_lifetime_jitter;
const PS = PER_SOURCE.fields;
const RATE = PS.rate.fields;

/** What a listener admits (at `path`): `max_connections`, `allow`, `deny`, `per_source`. */
export function checkListenerLimits(
  c: Checker,
  l: Obj,
  path: string,
): Pick<ResolvedListener, 'max_connections' | 'allow' | 'deny' | 'per_source' | 'max_lifetime_ms' | 'max_lifetime_jitter'> {
  const max_connections = l.max_connections === undefined ? null : c.int(l.max_connections, `${path}.max_connections`, LMAX.min, LMAX.max, LMAX.min);
  const allow = l.allow === undefined ? null : checkCidrs(c, l.allow, `${path}.allow`, true);
  const deny = l.deny === undefined ? [] : checkCidrs(c, l.deny, `${path}.deny`, false);
  const max_lifetime_ms = l.max_lifetime === undefined ? null : c.duration(l.max_lifetime, `${path}.max_lifetime`, LIFE.min, LIFE.max, LIFE.min);
  if (max_lifetime_ms !== null && l.protocol === 'http') {
    c.add(`${path}.max_lifetime`, "only for tcp listeners (an http listener's connections end by their idle timeout)");
  }
  const jitter = c.int(l.max_lifetime_jitter, `${path}.max_lifetime_jitter`, JITTER.min, JITTER.max, DEFAULTS.max_lifetime_jitter_percent);
  return {
    max_connections,
    allow,
    deny,
    per_source: checkPerSource(c, l.per_source, `${path}.per_source`),
    max_lifetime_ms,
    max_lifetime_jitter: jitter / 100,
  };
}

function checkPerSource(c: Checker, raw: unknown, path: string): PerSourceConfig | null {
  if (raw === undefined) return null;
  const o = c.object(raw, path, 'an object such as { max_connections: 100, rate: { connections: 20, per: "1s" } }');
  if (!o) return null;
  c.keys(o, keysOf(PER_SOURCE), path);
  const m = PS.max_connections;
  const max_connections = o.max_connections === undefined ? null : c.int(o.max_connections, `${path}.max_connections`, m.min, m.max, m.min);
  let rate: PerSourceConfig['rate'] = null;
  if (o.rate !== undefined) {
    const r = c.object(o.rate, `${path}.rate`, 'an object such as { connections: 20, per: "1s" }');
    if (r) {
      c.keys(r, keysOf(PS.rate), `${path}.rate`);
      if (r.connections === undefined || r.per === undefined) c.add(`${path}.rate`, 'needs both connections and per (e.g. { connections: 20, per: "1s" })');
      const connections = c.int(r.connections, `${path}.rate.connections`, RATE.connections.min, RATE.connections.max, RATE.connections.min);
      const per_ms = c.duration(r.per, `${path}.rate.per`, RATE.per.min, RATE.per.max, 1000);
      rate = { connections, per_ms };
    }
  }
  return { max_connections, rate };
}
