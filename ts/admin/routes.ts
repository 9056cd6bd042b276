/**
 * The admin API's routes: one table that the server dispatches on and the
 * OpenAPI test compares with `/api/openapi.json`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Algorithm, BackendConfig, BackendState, ResolvedConfig, ResolvedPool } from '../config/types.js';
import type { Logger } from '../log.js';
import type { PlanChange } from '../plan.js';
import type { TraceQuery } from '../traces.js';
import { configChanges } from '../reload/changes.js';
import { dashboardHtml } from './dashboard.js';
import { AdminError, fromLb } from './http.js';
import { METRICS_CONTENT_TYPE, metricsText } from './metrics.js';
import { openapiDocument } from './openapi.js';
import { ALGORITHMS, REQUEST_SCHEMAS, type Schema } from './schema.js';
import type { AdminTarget, Upgrader } from './target.js';
import { listenerViews, poolViews, type PoolView } from './view.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';


/** What a handler sees. */
export interface Ctx {
  lb: AdminTarget;
  req: IncomingMessage;
  res: ServerResponse;
  /** Path parameters, URL-decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The request body, already checked against `route.body`. */
  body: unknown;
  log: Logger;
  configPath: string | undefined;
  /** The admin settings this server runs with (a reload cannot change them). */
  admin: { address: string; token: string | null };
  /** Attach the response to the live stream (`/api/stream`). */
  subscribe(res: ServerResponse): void;
  /** What `POST /api/upgrade` runs, when this process can start its successor. */
  upgrade: Upgrader | undefined;
}

/** A handler's answer: JSON with a status, or text, or nothing (it wrote the response). */
export type Reply = { status: number; json: unknown } | { status: number; text: string; contentType: string } | undefined;

export interface Route {
  method: Method;
  /** OpenAPI path template, e.g. `/api/pools/{pool}`. */
  path: string;
  operationId: string;
  /** Schema of the JSON body, when the route takes one (then `application/json` is required). */
  body?: Schema;
  /** Answers without a token (the probes; they reveal nothing about pools or backends). */
  public?: boolean;
  handle(ctx: Ctx): Reply | Promise<Reply>;
}

function findPool(lb: AdminTarget, name: string): PoolView {
  const p = poolViews(lb).find((x) => x.name === name);
  if (!p) throw new AdminError(404, 'not_found', `no pool named "${name}" (pools: ${lb.config.pools.map((x) => x.name).join(', ')})`);
  return p;
}

function configPool(config: ResolvedConfig, name: string): ResolvedPool | undefined {
  return config.pools.find((p) => p.name === name);
}

/** Log a change that was applied: what, where, from what to what, and who asked. */
function logChange(ctx: Ctx, action: string, fields: Record<string, unknown>): void {
  ctx.log('admin.change', { action, ...fields, remote: ctx.req.socket.remoteAddress ?? null });
}

/**
 * The balancer's validation issues, re-addressed to the request that caused them: an added
 * backend is checked as `pools.P.backends[i]` of a configuration, but the client sent `body`.
 */
function asRequestIssues(err: AdminError, pool: string): AdminError {
  if (err.code !== 'invalid_config' || !err.issues) return err;
  const issues = err.issues.map((i) => ({ path: i.path.replace(/^pools\.[^.]+\.backends\[\d+\]/, 'body'), message: i.message }));
  const text = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new AdminError(422, 'invalid_config', `invalid backend for pools.${pool}: ${text}`, issues);
}

/** Run a balancer operation, mapping its errors to HTTP ones. */
async function call<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw fromLb(err);
  }
}

/** `ADDR=W` of `/api/plan?weight=` (the address may itself hold `=`-free colons and brackets). */
function parseWeights(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) {
    const i = v.lastIndexOf('=');
    const w = Number(v.slice(i + 1));
    if (i <= 0 || !/^\d+$/.test(v.slice(i + 1)) || !Number.isSafeInteger(w)) {
      throw new AdminError(400, 'bad_request', `expected weight=ADDRESS=WEIGHT (an integer), got ${JSON.stringify(v)}`);
    }
    out[v.slice(0, i)] = w;
  }
  return out;
}

/** Repeated or comma-separated query values. */
function many(q: URLSearchParams, key: string): string[] {
  return q
    .getAll(key)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}

const PLAN_KEYS = ['pool', 'add', 'remove', 'weight', 'algorithm', 'samples'];
const TRACE_KEYS = ['listener', 'pool', 'since', 'limit'];

/** `GET /api/traces`: checked `listener`, `pool`, `since` and `limit` query parameters. */
function traceQuery(lb: AdminTarget, query: URLSearchParams): TraceQuery {
  for (const key of new Set(query.keys())) {
    if (!TRACE_KEYS.includes(key)) throw new AdminError(400, 'bad_request', `unknown query parameter ${JSON.stringify(key)} (allowed: ${TRACE_KEYS.join(', ')})`);
  }
  const out: TraceQuery = {};
  const int = (key: 'since' | 'limit', min: number, max: number): void => {
    const v = query.get(key);
    if (v === null) return;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new AdminError(400, 'bad_request', `expected ${key} an integer ${min}..${max}, got ${JSON.stringify(v)}`);
    out[key] = Number(v);
  };
  int('since', 0, Number.MAX_SAFE_INTEGER);
  int('limit', 1, 512);
  const listener = query.get('listener');
  if (listener !== null) {
    const names = lb.config.listeners.map((l) => l.name);
    if (!names.includes(listener)) throw new AdminError(404, 'not_found', `no listener named "${listener}" (listeners: ${names.join(', ')})`);
    out.listener = listener;
  }
  const pool = query.get('pool');
  if (pool !== null) {
    if (!configPool(lb.config, pool)) throw new AdminError(404, 'not_found', `no pool named "${pool}" (pools: ${lb.config.pools.map((x) => x.name).join(', ')})`);
    out.pool = pool;
  }
  return out;
}
const DECISION_KEYS = ['policy', 'limit'];

/** `GET /api/policies/decisions`: checked `policy` and `limit` query parameters. */
function decisionFilter(lb: AdminTarget, query: URLSearchParams): { policy?: string; limit?: number } {
  for (const key of new Set(query.keys())) {
    if (!DECISION_KEYS.includes(key)) throw new AdminError(400, 'bad_request', `unknown query parameter ${JSON.stringify(key)} (allowed: ${DECISION_KEYS.join(', ')})`);
  }
  const filter: { policy?: string; limit?: number } = {};
  const limit = query.get('limit');
  if (limit !== null) {
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) throw new AdminError(400, 'bad_request', `expected limit an integer 1..1000, got ${JSON.stringify(limit)}`);
    filter.limit = Number(limit);
  }
  const policy = query.get('policy');
  if (policy !== null) {
    // A removed policy's decisions stay listed; a name never seen is a mistake worth a 404.
    const known = (lb.policies?.() ?? []).some((p) => p.name === policy) || (lb.policyDecisionCounts?.() ?? []).some((c) => c.policy === policy);
    if (!known) throw new AdminError(404, 'not_found', `no policy named "${policy}" (policies: ${(lb.policies?.() ?? []).map((p) => p.name).join(', ') || 'none'})`);
    filter.policy = policy;
  }
  return filter;
}

export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/',
    operationId: 'dashboard',
    handle: () => ({ status: 200, text: dashboardHtml(), contentType: 'text/html; charset=utf-8' }),
  },
  {
    method: 'GET',
    path: '/metrics',
    operationId: 'metrics',
    handle: async ({ lb }) => ({ status: 200, text: await call(() => metricsText(lb)), contentType: METRICS_CONTENT_TYPE }),
  },
  {
    method: 'GET',
    path: '/api/openapi.json',
    operationId: 'openapi',
    handle: () => ({ status: 200, json: openapiDocument() }),
  },
  {
    method: 'GET',
    path: '/api/listeners',
    operationId: 'listListeners',
    handle: async ({ lb }) => ({ status: 200, json: { listeners: await call(() => listenerViews(lb)) } }),
  },
  {
    method: 'GET',
    path: '/api/pools',
    operationId: 'listPools',
    handle: async ({ lb }) => ({ status: 200, json: { pools: await call(() => poolViews(lb)) } }),
  },
  {
    method: 'GET',
    path: '/api/pools/{pool}',
    operationId: 'getPool',
    handle: async ({ lb, params }) => ({ status: 200, json: { pool: await call(() => findPool(lb, params.pool!)) } }),
  },
  {
    method: 'POST',
    path: '/api/pools/{pool}/backends',
    operationId: 'addBackend',
    body: REQUEST_SCHEMAS.AddBackend,
    handle: async (ctx) => {
      const { lb, params } = ctx;
      const pool = params.pool!;
      const backend = ctx.body as BackendConfig;
      const before = new Set(configPool(lb.config, pool)?.backends.map((b) => b.address));
      await call(() => lb.addBackend(pool, backend)).catch((err: AdminError) => {
        throw asRequestIssues(err, pool);
      });
      const added = configPool(lb.config, pool)?.backends.find((b) => !before.has(b.address));
      logChange(ctx, 'backend.add', { pool, backend: added?.address ?? backend.address, weight: added?.weight, backup: added?.backup, state: added?.state });
      return { status: 201, json: { pool: findPool(lb, pool) } };
    },
  },
  {
    method: 'DELETE',
    path: '/api/pools/{pool}/backends/{address}',
    operationId: 'removeBackend',
    handle: async (ctx) => {
      const { lb, params } = ctx;
      await call(() => lb.removeBackend(params.pool!, params.address!));
      logChange(ctx, 'backend.remove', { pool: params.pool, backend: params.address });
      return { status: 200, json: { pool: findPool(lb, params.pool!) } };
    },
  },
  {
    method: 'PUT',
    path: '/api/pools/{pool}/backends/{address}/weight',
    operationId: 'setWeight',
    body: REQUEST_SCHEMAS.SetWeight,
    handle: async (ctx) => {
      const { lb, params } = ctx;
      const { weight } = ctx.body as { weight: number };
      const from = configPool(lb.config, params.pool!)?.backends.find((b) => b.address === params.address)?.weight ?? null;
      await call(() => lb.setWeight(params.pool!, params.address!, weight));
      logChange(ctx, 'backend.weight', { pool: params.pool, backend: params.address, from, to: weight });
      return { status: 200, json: { pool: findPool(lb, params.pool!) } };
    },
  },
  {
    method: 'PUT',
    path: '/api/pools/{pool}/backends/{address}/state',
    operationId: 'setState',
    body: REQUEST_SCHEMAS.SetState,
    handle: async (ctx) => {
      const { lb, params } = ctx;
      const { state } = ctx.body as { state: BackendState };
      const from = configPool(lb.config, params.pool!)?.backends.find((b) => b.address === params.address)?.state ?? null;
      await call(() => lb.setBackendState(params.pool!, params.address!, state));
      logChange(ctx, 'backend.state', { pool: params.pool, backend: params.address, from, to: state });
      return { status: 200, json: { pool: findPool(lb, params.pool!) } };
    },
  },
  {
    method: 'PUT',
    path: '/api/pools/{pool}/algorithm',
    operationId: 'setAlgorithm',
    body: REQUEST_SCHEMAS.SetAlgorithm,
    handle: async (ctx) => {
      const { lb, params } = ctx;
      const { algorithm } = ctx.body as { algorithm: Algorithm };
      const from = configPool(lb.config, params.pool!)?.algorithm ?? null;
      await call(() => lb.setAlgorithm(params.pool!, algorithm));
      logChange(ctx, 'pool.algorithm', { pool: params.pool, from, to: algorithm });
      return { status: 200, json: { pool: findPool(lb, params.pool!) } };
    },
  },
  {
    method: 'GET',
    path: '/api/config',
    operationId: 'configSource',
    handle: ({ lb, configPath }) => {
      const etcd = lb.configSource?.();
      return { status: 200, json: { source: etcd ?? (configPath ? { kind: 'file', file: configPath } : { kind: 'api' }) } };
    },
  },
  {
    method: 'POST',
    path: '/api/reload',
    operationId: 'reload',
    handle: async (ctx) => {
      const { lb, configPath } = ctx;
      if (!configPath) throw new AdminError(409, 'no_config_file', 'this balancer was not started from a configuration file, so there is nothing to reload');
      const before = lb.config;
      await call(() => lb.reload(configPath));
      const after = lb.config;
      const summary = (c: ResolvedConfig) => c.pools.map((p) => `${p.name}(${p.backends.length})`);
      // The admin server keeps running as it is; a changed `admin` section needs a restart.
      const adminChanged = JSON.stringify(after.admin ?? null) !== JSON.stringify(before.admin ?? null);
      const changes = configChanges(before, after);
      logChange(ctx, 'config.reload', { file: configPath, pools_before: summary(before), pools_after: summary(after), admin_restart_required: adminChanged, changes });
      return {
        status: 200,
        json: { reloaded: true, file: configPath, listeners: after.listeners.map((l) => l.name), pools: after.pools.map((p) => p.name), admin_restart_required: adminChanged, changes },
      };
    },
  },
  {
    method: 'POST',
    path: '/api/upgrade',
    operationId: 'upgrade',
    body: REQUEST_SCHEMAS.Upgrade,
    handle: async (ctx) => {
      if (!ctx.upgrade) throw new AdminError(409, 'upgrade_unavailable', 'this balancer was not started by the switchyard command, which alone can start a new process to take over');
      const { binary } = ctx.body as { binary?: string };
      try {
        const report = await ctx.upgrade(binary === undefined ? {} : { binary });
        return { status: 200, json: { upgraded: true, ...report } };
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const message = err instanceof Error ? err.message : String(err);
        if (code === 'upgrade_in_progress') throw new AdminError(409, code, message);
        throw new AdminError(502, 'upgrade_failed', `${message}; this process keeps serving`);
      }
    },
  },
  {
    method: 'GET',
    path: '/api/plan',
    operationId: 'plan',
    handle: async ({ lb, query }) => {
      for (const key of new Set(query.keys())) {
        if (!PLAN_KEYS.includes(key)) throw new AdminError(400, 'bad_request', `unknown query parameter ${JSON.stringify(key)} (allowed: ${PLAN_KEYS.join(', ')})`);
      }
      const pool = query.get('pool');
      if (!pool) throw new AdminError(400, 'bad_request', 'missing query parameter "pool"');
      if (!configPool(lb.config, pool)) throw new AdminError(404, 'not_found', `no pool named "${pool}"`);
      const change: PlanChange = {};
      const add = many(query, 'add');
      const remove = many(query, 'remove');
      const weight = parseWeights(query.getAll('weight'));
      if (add.length) change.add = add;
      if (remove.length) change.remove = remove;
      if (Object.keys(weight).length) change.weight = weight;
      const algorithm = query.get('algorithm');
      if (algorithm !== null) {
        if (!(ALGORITHMS as readonly string[]).includes(algorithm)) {
          throw new AdminError(400, 'bad_request', `expected algorithm one of ${ALGORITHMS.join(', ')}, got ${JSON.stringify(algorithm)}`);
        }
        change.algorithm = algorithm as Algorithm;
      }
      const samplesText = query.get('samples');
      let samples: number | undefined;
      if (samplesText !== null) {
        samples = Number(samplesText);
        if (!/^\d+$/.test(samplesText) || samples < 1 || samples > 1_000_000) {
          throw new AdminError(400, 'bad_request', `expected samples an integer 1..1000000, got ${JSON.stringify(samplesText)}`);
        }
      }
      try {
        return { status: 200, json: lb.plan(pool, change, samples === undefined ? {} : { samples }) };
      } catch (err) {
        // Nothing is applied, so an impossible change (removing a backend the pool lacks, adding
        // a bad address) is a bad query, not an invalid configuration.
        const e = fromLb(err);
        if (e.code !== 'invalid_config') throw e;
        // The plan names the parameter (`remove`); the client knows it as `query.remove`.
        const issues = (e.issues ?? []).map((i) => ({ path: PLAN_KEYS.includes(i.path) ? `query.${i.path}` : i.path, message: i.message }));
        throw new AdminError(400, 'bad_request', `invalid plan query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ') || e.message}`, issues);
      }
    },
  },
  {
    method: 'GET',
    path: '/api/policies',
    operationId: 'listPolicies',
    handle: ({ lb }) => ({ status: 200, json: { policies: lb.policies?.() ?? [] } }),
  },
  {
    method: 'GET',
    path: '/api/policies/decisions',
    operationId: 'listPolicyDecisions',
    handle: ({ lb, query }) => ({ status: 200, json: { decisions: lb.policyDecisions?.(decisionFilter(lb, query)) ?? [] } }),
  },
  {
    method: 'GET',
    path: '/api/traces',
    operationId: 'listTraces',
    handle: async ({ lb, query }) => {
      const q = traceQuery(lb, query);
      return { status: 200, json: { traces: await call(() => lb.traces(q)) } };
    },
  },
  {
    method: 'PUT',
    path: '/api/listeners/{listener}/trace-sample',
    operationId: 'setTraceSample',
    body: REQUEST_SCHEMAS.SetTraceSample,
    handle: async (ctx) => {
      const listener = ctx.params.listener!;
      const { rate } = ctx.body as { rate: number };
      await call(() => ctx.lb.setTraceSample(listener, rate));
      logChange(ctx, 'trace.sample', { listener, rate });
      return { status: 200, json: { listener, rate } };
    },
  },
  {
    method: 'GET',
    path: '/api/events',
    operationId: 'listEvents',
    handle: async ({ lb }) => ({ status: 200, json: { events: await call(() => lb.events()) } }),
  },
  {
    method: 'GET',
    path: '/api/stream',
    operationId: 'stream',
    handle: ({ req, res, subscribe }) => {
      // HEAD: the headers of a stream, without holding the connection open.
      if (req.method === 'HEAD') return { status: 200, text: '', contentType: 'text/event-stream; charset=utf-8' };
      subscribe(res);
      return undefined;
    },
  },
  {
    method: 'GET',
    path: '/healthz',
    operationId: 'healthz',
    public: true,
    handle: () => ({ status: 200, json: { status: 'ok' } }),
  },
  {
    method: 'GET',
    path: '/readyz',
    operationId: 'readyz',
    public: true,
    // Listeners are bound before the admin server starts, so only a drain makes a balancer unready;
    // not the drain after an upgrade (the new process serves: a probe that reached this one on a
    // connection accepted just before the switch must not see the service go down).
    handle: ({ lb }) => (lb.draining && !lb.handedOver ? { status: 503, json: { status: 'draining' } } : { status: 200, json: { status: 'ready' } }),
  },
];

/** Match a request path against a template; returns decoded params or null. */
export function matchPath(template: string, path: string): Record<string, string> | null {
  const t = template.split('/');
  const p = path.split('/');
  if (t.length !== p.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const seg = t[i]!;
    const got = p[i]!;
    if (seg.startsWith('{') && seg.endsWith('}')) {
      if (got === '') return null;
      let decoded: string;
      try {
        decoded = decodeURIComponent(got);
      } catch {
        throw new AdminError(400, 'bad_request', `malformed percent-encoding in path segment ${JSON.stringify(got)}`);
      }
      params[seg.slice(1, -1)] = decoded;
    } else if (seg !== got) return null;
  }
  return params;
}
