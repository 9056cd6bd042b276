/**
 * The OpenAPI 3.1 document served at `/api/openapi.json`. Request body schemas
 * are the very objects the server validates with (`schema.ts`); a test checks
 * that every route of `routes.ts` is here and vice versa, that the examples
 * validate, and that live responses match the documented schemas.
 */
import { LATENCY_BUCKETS_SECONDS } from './metrics.js';
import { REQUEST_SCHEMAS, type Schema } from './schema.js';

const int = (description?: string): Schema => ({ type: 'integer', minimum: 0, ...(description ? { description } : {}) });
const num = (description?: string): Schema => ({ type: 'number', ...(description ? { description } : {}) });
const str = (description?: string): Schema => ({ type: 'string', ...(description ? { description } : {}) });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, description?: string): Schema => ({
  type: 'object',
  required: Object.keys(properties),
  properties,
  ...(description ? { description } : {}),
});
/** `schema` (an `obj`) with more properties that are not required. */
const withOptional = (schema: Schema, more: Record<string, Schema>): Schema => ({ ...schema, properties: { ...(schema.properties as Record<string, Schema>), ...more } });

const SCHEMAS: Record<string, Schema> = {
  ...REQUEST_SCHEMAS,
  Issue: obj({ path: str('Where, e.g. `pools.api.backends[2].address`.'), message: str() }),
  Error: {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: {
            type: 'string',
            description:
              'Stable: bad_json, bad_request, bad_content_type, unauthorized, not_found, method_not_allowed, conflict, bind_failed, no_config_file, invalid_config, request_timeout, payload_too_large, headers_too_large, closed, internal.',
          },
          message: str(),
          issues: { type: 'array', items: ref('Issue'), description: 'With `invalid_config` (422) and validation `bad_request` (400): every problem found.' },
        },
      },
    },
  },
  Listener: withOptional(obj({
    name: str(),
    address: str('Bound address.'),
    protocol: { type: 'string', enum: ['tcp', 'http'] },
    pool: str('The default pool (for `http`, the pool of the default route; empty when there is none).'),
    accepted: int('Connections accepted.'),
    active: int(),
    no_backend: int('Connections closed because no backend could be reached.'),
    idle_timeouts: int(),
    no_route: int('HTTP requests no route matched (answered 404).'),
    refused_denied: int('Closed at once by allow/deny.'),
    refused_source_limit: int('Closed at once: the source had per_source.max_connections open.'),
    refused_rate: int('Closed at once: the source was over per_source.rate.'),
    routes: { type: 'array', items: ref('Route'), description: 'HTTP routes in match order (policy rules first, the default route last), or a tcp listener\'s policy rules.' },
  }), {
    proxy: obj(
      { accepted: int('Relayed clients.'), local: int('LOCAL headers (the sender\'s own checks).'), untrusted: int(), invalid: int(), timeout: int() },
      'PROXY protocol headers, on listeners that expect them (`proxy_protocol`); untrusted, invalid and timeout connections were closed.',
    ),
  }),
  Route: obj({
    name: str('`LISTENER.routes[i]` (a policy rule: `LISTENER.policy[i]`) unless named; the route from the listener\'s `pool` is `LISTENER.default`.'),
    pool: str('"" when the route (rule) answers itself: deny, redirect.'),
    tag: str('The rule\'s tag ("" without one).'),
    match: str('The conditions in one line, e.g. `host static.example.com, path_prefix /static/`; `every request` (tcp rules: `every connection`) when it has none.'),
    connections: int('tcp rules: connections forwarded.'),
    denied: int('Requests (tcp: connections) the rule denied.'),
    redirected: int('Requests the rule redirected.'),
    rate_limited: int('Requests (tcp: connections) over the rule\'s rate class: answered 429 (tcp: closed).'),
    responses_1xx: int(),
    responses_2xx: int(),
    responses_3xx: int(),
    responses_4xx: int('Switchyard\'s own 4xx answers (400, 408, 413, 431) included.'),
    responses_5xx: int('Switchyard\'s own 5xx answers (502, 503, 504) included.'),
    latency_buckets: {
      type: 'array',
      items: int(),
      description: `Cumulative request counts with a latency up to ${LATENCY_BUCKETS_SECONDS.join(', ')} s, then all of them (+Inf).`,
    },
    latency_us_sum: int('Sum of the latencies, microseconds.'),
    retries: int('Requests sent again to another backend.'),
    http2_requests: int('Requests that came as HTTP/2 streams.'),
    resets: int('Responses cut before their end (an HTTP/2 stream reset, a connection closed mid-body).'),
    grpc_statuses: { type: 'array', items: int(), description: 'gRPC calls by the status they ended with: index = code (0 OK ... 16 UNAUTHENTICATED).' },
  }),
  ConfigSource: {
    type: 'object',
    required: ['kind'],
    description: '`file` (with `file`), `etcd` (with endpoints, key, revision, applied_at, last_error), or `api` (started with a config object).',
    properties: {
      kind: { type: 'string', enum: ['file', 'etcd', 'api'] },
      file: str('The configuration file (`file`).'),
      endpoints: { type: 'array', items: str() },
      key: str('The etcd key holding the configuration.'),
      revision: int('The etcd revision of the value in force.'),
      applied_at: str('When the value in force was applied, ISO 8601.'),
      last_error: {
        type: ['object', 'null'],
        description: 'The last value refused (not in force): its revision, when, why, and every issue; null once a good value is applied.',
        required: ['revision', 'at', 'message', 'issues'],
        properties: { revision: int(), at: str(), message: str(), issues: { type: 'array', items: ref('Issue') } },
      },
    },
  },
  Check: {
    type: ['object', 'null'],
    description: 'The last active health check; null when the pool has none.',
    required: ['status', 'last', 'since'],
    properties: {
      status: { type: 'string', enum: ['up', 'down', 'unknown'] },
      last: {
        type: ['object', 'null'],
        required: ['ok', 'reason', 'duration_ms', 'at'],
        properties: { ok: { type: 'boolean' }, reason: str(), duration_ms: num(), at: { type: ['string', 'number'] } },
      },
      since: { type: ['string', 'number'], description: 'When the status last changed (epoch ms).' },
      successes: int('Consecutive successes.'),
      failures: int('Consecutive failures.'),
    },
  },
  Backend: obj({
    address: str(),
    weight: int(),
    backup: { type: 'boolean' },
    share: num('Share of new keys/connections with every backend eligible.'),
    state: { type: 'string', enum: ['ready', 'drain', 'maint'], description: 'Operator state.' },
    health: { type: 'string', enum: ['up', 'down', 'unknown'], description: 'Active-check verdict.' },
    ejected: { type: 'boolean', description: 'Passively ejected now.' },
    ejection_left_ms: int(),
    failures: int('Consecutive passive failures.'),
    ejections: int('Ejections in the current streak.'),
    available: { type: 'boolean', description: 'Would a new connection be allowed now.' },
    status: { type: 'string', enum: ['up', 'down', 'ejected', 'drain', 'maint'], description: 'One word: operator state, else check verdict, else ejection.' },
    active: int('Connections open now (pools of HTTP routes: requests in flight).'),
    max_connections: int('Most connections (HTTP: requests in flight) at once; 0: no limit.'),
    total: int('Connections made (pools of HTTP routes: requests sent).'),
    bytes_in: int('Client → backend.'),
    bytes_out: int('Backend → client.'),
    connect_errors: int('Refused, unreachable, reset.'),
    connect_timeouts: int(),
    connect_time_avg_us: num(),
    connects: int('Successful connects (for HTTP pools fewer than `total`: requests reuse keep-alive connections).'),
    conns_reused: int('HTTP requests sent on a reused keep-alive connection.'),
    conns_idle: int('Idle keep-alive connections kept now (HTTP).'),
    responses_5xx: int('HTTP responses with a 5xx status from this backend.'),
    check: ref('Check'),
  }),
  Pool: obj({
    name: str(),
    algorithm: str(),
    active: int(),
    share_min: num(),
    share_max: num(),
    backends: { type: 'array', items: ref('Backend') },
    membership: {
      type: ['object', 'null'],
      description: "Where the pool's backends come from and when their set last changed.",
      required: ['sources', 'changed_at', 'changed_by'],
      properties: {
        sources: { type: 'array', items: { type: 'string', enum: ['file', 'dns', 'etcd'] }, description: 'Addresses in the configuration, DNS names or SRV records, an etcd prefix.' },
        changed_at: { type: 'string', description: 'When its set of backend addresses last changed (or the balancer started), ISO 8601.' },
        changed_by: { type: 'string', enum: ['file', 'dns', 'etcd', 'config', 'api'], description: 'What made that change: a reload of the file, DNS, etcd, update(), or an operator.' },
      },
    },
    queue: obj(
      { waiting: int('Waiting now.'), queued: int('Waited since start (served or refused).'), wait_ms: num('Their total wait.'), timeouts: int(), full: int() },
      'Clients waiting for a backend slot (backends with max_connections); refused after the timeout, or at once when the queue was full.',
    ),
  }),
  PoolEnvelope: obj({ pool: ref('Pool') }),
  Event: withOptional(
    obj({
      time: { type: 'string', format: 'date-time' },
      pool: str(),
      address: str(),
      kind: str('up, down, ejected, ejection_skipped, accept_error, proxy_refused, connection_refused, drain, ready, maint, drain_closed, added, removed, weight, algorithm, kept, …'),
      reason: str(),
    }),
    { repeated: int('Present on a folded summary: how many more events of this kind and backend the last second had.') },
  ),
  Share: obj({ address: str(), share: num() }),
  PlanReport: {
    type: 'object',
    required: ['pool', 'algorithm_before', 'algorithm_after', 'keys', 'keyed', 'moved', 'before', 'after'],
    properties: {
      pool: str(),
      algorithm_before: str(),
      algorithm_after: str(),
      keys: int(),
      keyed: { type: 'boolean' },
      moved: { type: ['number', 'null'], description: 'Fraction of keys whose backend changes (keyed algorithms), else null.' },
      before: { type: 'array', items: ref('Share') },
      after: { type: 'array', items: ref('Share') },
    },
  },
  Policy: obj({
    name: str('Unique per balancer; names its decisions.'),
    kind: str('`canary`, `adaptive_weights`, `auto_drain`, or `custom`.'),
    interval_ms: { type: ['integer', 'null'], minimum: 1, description: 'Tick interval; null for a policy that only reacts to events.' },
    state: str('Its state machine: e.g. `ramping`, `promoted`, `rolled_back`, `overridden` (canary); `measuring`, `adjusting`; `watching`, `draining`.'),
    detail: { type: 'object', description: 'What the policy reports about itself (step, windows, drained backends...).' },
    decisions: int('Decisions it made since it was attached.'),
  }),
  PolicyDecision: withOptional(
    obj({
      time: str('ISO timestamp on the policy clock.'),
      policy: str(),
      action: str('`set_weight`, `drain`, `ready` (changes), or a transition: `promoted`, `rolled_back`, `overridden`, `drain_capped`, ...'),
      pool: str(),
      address: str('The backend; empty for a decision about a whole pool.'),
      reason: str('Why, for a person.'),
    }),
    { from: { type: ['integer', 'string'], description: 'The weight or state before (changes only).' }, to: { type: ['integer', 'string'], description: 'The weight or state after (changes only).' } },
  ),
  Trace: obj(
    {
      seq: int('Increases by one per trace; ask for newer ones with `since`.'),
      time_ms: int('When it was decided, ms since the Unix epoch.'),
      listener: str(),
      kind: { type: 'string', enum: ['tcp', 'http'] },
      client: str('The client `ip:port`.'),
      rule: { type: ['string', 'null'], description: 'The rule (HTTP: route) that matched; null: the listener\'s default pool.' },
      pool: str('"" when a rule answered itself (denied, redirected, rate_limited): no pool was consulted.'),
      algorithm: { type: ['string', 'null'], enum: [...REQUEST_SCHEMAS.SetAlgorithm.properties.algorithm.enum, null], description: 'null when no pool was consulted.' },
      key: { type: ['string', 'null'], description: 'The selection key (hex) when the algorithm reads one.' },
      candidates: { type: 'array', items: ref('TraceCandidate'), description: 'Every backend of the pool, in configuration order.' },
      attempts: { type: 'array', items: ref('TraceAttempt'), description: 'The backends attempted, in order (retries included).' },
      winner: { type: ['string', 'null'], description: 'The backend that took it; null when none did.' },
      outcome: {
        type: 'string',
        enum: ['connected', 'answered', 'no_backend', 'all_failed', 'queue_refused', 'local_error', 'timeout', 'bad_gateway', 'refused', 'denied', 'redirected', 'rate_limited'],
        description: '`connected` (TCP) or `answered` (HTTP) with a winner; `no_backend`: none was eligible; `all_failed`: every attempt failed; `denied`, `redirected`, `rate_limited`: the rule (or its hook) answered itself, without candidates; the rest as named.',
      },
      status: { type: ['integer', 'null'], description: 'HTTP: the status the client got.' },
    },
    'One balancing decision of a sampled connection (TCP) or request (HTTP), explained right after the pick from the state the selectors read.',
  ),
  TraceCandidate: obj({
    address: str(),
    weight: int('Its weight now (a slow-start ramp shows as a lowered weight).'),
    backup: { type: 'boolean' },
    state: { type: 'string', enum: ['ready', 'drain', 'maint'] },
    health: { type: 'string', enum: ['up', 'down', 'unknown'], description: 'The active-check verdict.' },
    active: int('Connections (HTTP: requests in flight) right after the decision.'),
    verdict: { type: 'string', enum: ['chosen', 'eligible', 'skipped', 'failed'] },
    reason: {
      type: ['string', 'null'],
      enum: ['drain', 'maint', 'check_down', 'ejected', 'weight_zero', 'full', 'backup_idle', 'attempt_failed', null],
      description: 'Why it was skipped or failed (stable codes).',
    },
    detail: { type: ['string', 'null'], description: 'The error of a failed attempt, the time left of an ejection, the limit of a full backend, a sticky pin.' },
  }),
  TraceAttempt: obj({ backend: str(), error: { type: ['string', 'null'], description: 'Why it failed; null: it succeeded.' } }),
  TraceSample: obj({ listener: str(), rate: num('The share traced from now on.') }),
  Probe: obj({ status: { type: 'string', enum: ['ok', 'ready', 'draining'] } }, 'A probe answer: `ok` (healthz), `ready` or `draining` (readyz).'),
  Reload: obj({
    reloaded: { type: 'boolean' },
    file: str(),
    listeners: { type: 'array', items: str() },
    pools: { type: 'array', items: str() },
    admin_restart_required: { type: 'boolean', description: 'The file changed the `admin` section, which applies only after a restart.' },
    changes: ref('ConfigChanges'),
  }),
  Upgraded: obj(
    {
      upgraded: { type: 'boolean' },
      pid: int(),
      version: str(),
      connections: { ...int(), description: 'Established plain TCP connections handed to the new process.' },
      bytes: { ...int(), description: 'Bytes those connections had in flight (read, not yet delivered), delivered by the new process.' },
      ms: { ...int(), description: 'From starting the new process to the last connection handed over.' },
    },
    'The new process accepts on every listener and the admin socket; this one stopped accepting and drains what it could not hand over.',
  ),
  NameChanges: obj({ added: { type: 'array', items: str() }, removed: { type: 'array', items: str() }, changed: { type: 'array', items: str() } }),
  ConfigChanges: obj(
    {
      listeners: ref('NameChanges'),
      pools: ref('NameChanges'),
      backends: { type: 'object', additionalProperties: ref('NameChanges'), description: 'Per pool with a backend difference: addresses added, removed, changed (weight, state, …).' },
      settings: { type: 'array', items: str(), description: 'Top-level settings that differ (`workers`, `max_connections`, `dns`, `admin`).' },
    },
    'What the reload changed, from the configuration in force before to the one after (a runtime change the file does not touch is not a change). A pool is `changed` when its settings or backends are.',
  ),
};

const json = (schema: Schema) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const ok = (description: string, schema: Schema) => ({ description, content: json(schema) });
const poolParam = { name: 'pool', in: 'path', required: true, schema: { type: 'string' } };
const addressParam = {
  name: 'address',
  in: 'path',
  required: true,
  description: 'Backend `ip:port`, URL-encoded (`[::1]:80` → `%5B%3A%3A1%5D%3A80`).',
  schema: { type: 'string' },
};
const body = (name: keyof typeof REQUEST_SCHEMAS, example: unknown) => ({
  required: true,
  content: { 'application/json': { schema: ref(name), example } },
});
const COMMON = {
  '401': error('Missing or wrong bearer token.'),
};
const BODY_ERRORS = {
  '400': error('Wrong content type, malformed JSON or wrong types (`bad_content_type`, `bad_json`, `bad_request`); nothing changed.'),
  '413': error('Body over 64 KiB.'),
};

/** The document, built fresh each call (callers may mutate it). */
export function openapiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard admin API',
      version: '1',
      description:
        'Inspect and steer a running Switchyard. Errors are `{ "error": { "code", "message" } }`. When a token is configured every route but `/healthz` and `/readyz` needs `Authorization: Bearer <token>` (GET routes also accept the dashboard cookie set by `GET /?token=`). Every GET route also answers HEAD (the same status and headers, no body).',
    },
    components: {
      schemas: SCHEMAS,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearer: [] }],
    paths: {
      '/': {
        get: {
          operationId: 'dashboard',
          summary: 'The live dashboard (HTML). `?token=` sets an HttpOnly cookie and redirects to `/`.',
          parameters: [{ name: 'token', in: 'query', required: false, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The page.', content: { 'text/html': { schema: { type: 'string' } } } },
            '303': { description: 'Token accepted; cookie set; redirect to `/`.' },
            ...COMMON,
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus text format 0.0.4.',
          responses: { '200': { description: 'Metrics.', content: { 'text/plain': { schema: { type: 'string' } } } }, ...COMMON },
        },
      },
      '/api/openapi.json': {
        get: { operationId: 'openapi', summary: 'This document.', responses: { '200': ok('OpenAPI 3.1.', { type: 'object' }), ...COMMON } },
      },
      '/api/listeners': {
        get: {
          operationId: 'listListeners',
          summary: 'Every listener with its protocol and counters; an HTTP listener with its routes (conditions, responses by status class, latency buckets, retries).',
          responses: { '200': ok('Listeners.', obj({ listeners: { type: 'array', items: ref('Listener') } })), ...COMMON },
        },
      },
      '/api/pools': {
        get: {
          operationId: 'listPools',
          summary: 'Every pool with its backends: state, weight, connections, bytes, errors, last check.',
          responses: { '200': ok('Pools.', obj({ pools: { type: 'array', items: ref('Pool') } })), ...COMMON },
        },
      },
      '/api/pools/{pool}': {
        get: {
          operationId: 'getPool',
          summary: 'One pool.',
          parameters: [poolParam],
          responses: { '200': ok('The pool.', ref('PoolEnvelope')), '404': error('No such pool.'), ...COMMON },
        },
      },
      '/api/pools/{pool}/backends': {
        post: {
          operationId: 'addBackend',
          summary: 'Add a backend (validated like a config file entry).',
          parameters: [poolParam],
          requestBody: body('AddBackend', { address: '10.0.0.4:80', weight: 2 }),
          responses: {
            '201': ok('Added; the pool after the change.', ref('PoolEnvelope')),
            ...BODY_ERRORS,
            '404': error('No such pool.'),
            '409': error('The pool already has this backend.'),
            '422': error('Invalid backend (e.g. not an IP address), with `issues` naming the body field (`body.address`).'),
            ...COMMON,
          },
        },
      },
      '/api/pools/{pool}/backends/{address}': {
        delete: {
          operationId: 'removeBackend',
          summary: 'Remove a backend; its established connections keep running.',
          parameters: [poolParam, addressParam],
          responses: {
            '200': ok('Removed; the pool after the change.', ref('PoolEnvelope')),
            '404': error('No such pool or backend.'),
            '409': error('It is the last backend of the pool.'),
            ...COMMON,
          },
        },
      },
      '/api/pools/{pool}/backends/{address}/weight': {
        put: {
          operationId: 'setWeight',
          summary: 'Change a weight (0 = no new connections). Established connections are untouched.',
          parameters: [poolParam, addressParam],
          requestBody: body('SetWeight', { weight: 5 }),
          responses: { '200': ok('The pool after the change.', ref('PoolEnvelope')), ...BODY_ERRORS, '404': error('No such pool or backend.'), '422': error('Rejected by validation.'), ...COMMON },
        },
      },
      '/api/pools/{pool}/backends/{address}/state': {
        put: {
          operationId: 'setState',
          summary: '`ready`, `drain` (no new connections; the rest closed after `drain_timeout`) or `maint`.',
          parameters: [poolParam, addressParam],
          requestBody: body('SetState', { state: 'drain' }),
          responses: { '200': ok('The pool after the change.', ref('PoolEnvelope')), ...BODY_ERRORS, '404': error('No such pool or backend.'), '422': error('Rejected by validation.'), ...COMMON },
        },
      },
      '/api/pools/{pool}/algorithm': {
        put: {
          operationId: 'setAlgorithm',
          summary: "Switch a pool's algorithm; established connections are untouched.",
          parameters: [poolParam],
          requestBody: body('SetAlgorithm', { algorithm: 'least_connections' }),
          responses: { '200': ok('The pool after the change.', ref('PoolEnvelope')), ...BODY_ERRORS, '404': error('No such pool.'), '422': error('Rejected by validation.'), ...COMMON },
        },
      },
      '/api/config': {
        get: {
          operationId: 'configSource',
          summary: 'Where the configuration comes from: a file, an etcd key (with the revision in force and the last refused value, if any), or the API.',
          responses: { '200': ok('The source.', obj({ source: ref('ConfigSource') })), ...COMMON },
        },
      },
      '/api/reload': {
        post: {
          operationId: 'reload',
          summary: 'Re-read the configuration file. An invalid file changes nothing and returns every issue. No body.',
          responses: {
            '200': ok('Applied.', ref('Reload')),
            '409': error('Not started from a file (`no_config_file`), or a listener of the file cannot bind its address (`bind_failed`; nothing changed).'),
            '422': error('The file is invalid (`invalid_config`, with `issues`); nothing changed.'),
            ...COMMON,
          },
        },
      },
      '/api/upgrade': {
        post: {
          operationId: 'upgrade',
          summary:
            'Replace this process with a new one (a binary upgrade): it receives the listening sockets, the admin socket and the established plain TCP connections; this one drains the rest and exits. A new process that fails to start changes nothing.',
          requestBody: body('Upgrade', {}),
          responses: {
            '200': ok('The new process took over; this one drains and exits.', ref('Upgraded')),
            ...BODY_ERRORS,
            '409': error('This balancer was not started by the `switchyard` command, which alone can start a new process (`upgrade_unavailable`), or an upgrade is already under way (`upgrade_in_progress`).'),
            '502': error('The new process could not be started, exited, or was not ready in time (`upgrade_failed`); this one keeps serving.'),
            ...COMMON,
          },
        },
      },
      '/api/plan': {
        get: {
          operationId: 'plan',
          summary: 'What would move if a change were applied to a pool. Changes nothing.',
          parameters: [
            { name: 'pool', in: 'query', required: true, schema: { type: 'string' }, example: 'main' },
            { name: 'add', in: 'query', required: false, description: 'Backend to add; repeat or comma-separate.', schema: { type: 'string' }, example: '10.0.0.4:80' },
            { name: 'remove', in: 'query', required: false, description: 'Backend to remove; repeat or comma-separate.', schema: { type: 'string' } },
            { name: 'weight', in: 'query', required: false, description: '`ADDRESS=WEIGHT`; repeat for several.', schema: { type: 'string', pattern: '^.+=\\d+$' } },
            { name: 'algorithm', in: 'query', required: false, schema: { type: 'string', enum: REQUEST_SCHEMAS.SetAlgorithm.properties.algorithm.enum } },
            { name: 'samples', in: 'query', required: false, description: 'Synthetic keys (default 100000).', schema: { type: 'integer', minimum: 1, maximum: 1000000 } },
          ],
          responses: {
            '200': ok('The report.', ref('PlanReport')),
            '400': error('Missing pool, unknown parameter, a malformed value, or an impossible change (e.g. removing a backend the pool does not have; with `issues`).'),
            '404': error('No such pool.'),
            ...COMMON,
          },
        },
      },
      '/api/policies': {
        get: {
          operationId: 'listPolicies',
          summary: 'The attached control loops: kind, tick interval, state and decision count.',
          responses: { '200': ok('Policies.', obj({ policies: { type: 'array', items: ref('Policy') } })), ...COMMON },
        },
      },
      '/api/policies/decisions': {
        get: {
          operationId: 'listPolicyDecisions',
          summary: 'Recent policy decisions (the last 500 kept), oldest first, each with its reason.',
          parameters: [
            { name: 'policy', in: 'query', required: false, description: "Only this policy's.", schema: { type: 'string' }, example: 'canary:main' },
            { name: 'limit', in: 'query', required: false, description: 'Only the newest N.', schema: { type: 'integer', minimum: 1, maximum: 1000 }, example: 50 },
          ],
          responses: {
            '200': ok('Decisions.', obj({ decisions: { type: 'array', items: ref('PolicyDecision') } })),
            '400': error('Unknown parameter or a bad `limit`.'),
            '404': error('No policy of that name ever ran.'),
            ...COMMON,
          },
        },
      },
      '/api/traces': {
        get: {
          operationId: 'listTraces',
          summary: 'Decision traces of sampled connections and requests (the last 512 kept, reading removes none), oldest first: the rule, every backend with its verdict and reason, the attempts, the winner.',
          parameters: [
            { name: 'listener', in: 'query', required: false, description: "Only this listener's.", schema: { type: 'string' }, example: 'front' },
            { name: 'pool', in: 'query', required: false, description: 'Only decisions in this pool.', schema: { type: 'string' } },
            { name: 'since', in: 'query', required: false, description: 'Only traces with a greater `seq`.', schema: { type: 'integer', minimum: 0 } },
            { name: 'limit', in: 'query', required: false, description: 'Only the newest N.', schema: { type: 'integer', minimum: 1, maximum: 512 }, example: 50 },
          ],
          responses: {
            '200': ok('Traces.', obj({ traces: { type: 'array', items: ref('Trace') } })),
            '400': error('Unknown parameter or a bad `since` or `limit`.'),
            '404': error('No such listener or pool.'),
            ...COMMON,
          },
        },
      },
      '/api/listeners/{listener}/trace-sample': {
        put: {
          operationId: 'setTraceSample',
          summary: "Trace a share of a listener's connections (HTTP: requests) from now on, without a reload. A reload keeps it unless the file changes the listener's `trace_sample`.",
          parameters: [{ name: 'listener', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: body('SetTraceSample', { rate: 1 }),
          responses: {
            '200': ok('The rate in force.', ref('TraceSample')),
            ...BODY_ERRORS,
            '404': error('No such listener.'),
            '422': error('A udp listener (its flows are not traced).'),
            ...COMMON,
          },
        },
      },
      '/api/events': {
        get: {
          operationId: 'listEvents',
          summary: 'Recent backend state changes, oldest first.',
          responses: { '200': ok('Events.', obj({ events: { type: 'array', items: ref('Event') } })), ...COMMON },
        },
      },
      '/api/stream': {
        get: {
          operationId: 'stream',
          summary:
            'Server-sent events: `stats` every second (`{ time, listeners, pools }`, the shapes of /api/listeners and /api/pools) and `backend` for each backend event.',
          responses: { '200': { description: 'An event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...COMMON },
        },
      },
      '/healthz': {
        get: {
          operationId: 'healthz',
          summary: 'Liveness: 200 while the process serves HTTP. No token needed.',
          security: [],
          responses: { '200': ok('Alive.', ref('Probe')) },
        },
      },
      '/readyz': {
        get: {
          operationId: 'readyz',
          summary: 'Readiness: 200 while the listeners are bound and accepting; 503 from the start of `close()` (the drain) on. No token needed.',
          security: [],
          responses: { '200': ok('Ready.', ref('Probe')), '503': ok('Draining: take this instance out of rotation.', ref('Probe')) },
        },
      },
    },
  };
}
