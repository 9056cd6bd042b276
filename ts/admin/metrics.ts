/**
 * `GET /metrics`: the Prometheus text exposition format 0.0.4, pulled from the
 * data plane's atomics at scrape time (`lb.stats()`) plus the active-check
 * view, the listeners' certificates and this process's memory, CPU and file
 * descriptors. Names follow Prometheus conventions: `_total` counters,
 * `_seconds` / `_bytes` / `_ratio` units, `_info` for constant labels.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { packageVersion } from '../version.js';
import { LATENCY_BUCKETS_SECONDS } from '../binding/catalog.generated.js';
import type { RouteReport as RouteStats, UdpReport } from '../binding/types.generated.js';
import type { AdminTarget } from './target.js';
import { healthMap } from './view.js';
import { poolsOf } from '../config/uses.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

/** One sample: labels, value and, for a summary or histogram, the suffix of its series (`_sum`, `_count`, `_bucket`). */
type Sample = [Labels, number] | [Labels, number, '_sum' | '_count' | '_bucket'];

interface Family {
  name: string;
  help: string;
  /** A `summary` here has no quantiles: it is the `_sum` and `_count` counter pair. */
  type: 'counter' | 'gauge' | 'summary' | 'histogram';
  samples: Sample[];
}

/**
 * Upper bounds (seconds) of the data plane's request latency buckets, from its
 * catalog. Each route's `latency_buckets` has one count per bound, then +Inf;
 * `collect` refuses a report that does not fit.
 */
export { LATENCY_BUCKETS_SECONDS };

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** The metric families of UDP listeners. */
function udpFamilies(fam: (name: string, type: 'counter' | 'gauge', help: string) => Family) {
  return {
    datagrams: fam('switchyard_udp_datagrams_total', 'counter', 'Datagrams of a UDP listener: in from clients, out (replies) to them.'),
    bytes: fam('switchyard_udp_bytes_total', 'counter', 'Payload bytes of a UDP listener: in from clients, out to them.'),
    flowsActive: fam('switchyard_udp_flows_active', 'gauge', 'Flows (a client address pinned to a backend) of a UDP listener now.'),
    flows: fam('switchyard_udp_flows_total', 'counter', 'Flows by event: created; ended by idle timeout (expired), after udp.responses replies (answered), or because their backend became unusable (moved).'),
    dropped: fam('switchyard_udp_dropped_total', 'counter', 'Datagrams dropped by reason: empty, oversized (udp.max_datagram_size), max_flows, no_backend, reply (could not be sent to the client).'),
    unreachable: fam('switchyard_udp_backend_unreachable_total', 'counter', 'ICMP port unreachable from a backend of a UDP listener (its flow moves; passive detection counts it).'),
  };
}

/** The samples of one UDP listener. */
function udpSamples(f: ReturnType<typeof udpFamilies>, labels: Labels, u: UdpReport): void {
  f.datagrams.samples.push([{ ...labels, direction: 'in' }, u.datagrams_in], [{ ...labels, direction: 'out' }, u.datagrams_out]);
  f.bytes.samples.push([{ ...labels, direction: 'in' }, u.bytes_in], [{ ...labels, direction: 'out' }, u.bytes_out]);
  f.flowsActive.samples.push([labels, u.flows_active]);
  for (const [event, n] of [['created', u.flows_created], ['expired', u.flows_expired], ['answered', u.flows_answered], ['moved', u.flows_moved]] as const) f.flows.samples.push([{ ...labels, event }, n]);
  const drops = [['empty', u.dropped_empty], ['oversized', u.dropped_oversized], ['max_flows', u.dropped_max_flows], ['no_backend', u.dropped_no_backend], ['reply', u.dropped_reply]] as const;
  for (const [reason, n] of drops) f.dropped.samples.push([{ ...labels, reason }, n]);
  f.unreachable.samples.push([labels, u.backend_unreachable]);
}

/** gRPC status names by code (grpc/grpc:doc/statuscodes.md), the `code` label of gRPC metrics. */
const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** The `_bucket` (with `le`), `_sum` and `_count` samples of one route's latency histogram. */
function histogramSamples(labels: Labels, r: RouteStats): Sample[] {
  if (r.latency_buckets.length !== LATENCY_BUCKETS_SECONDS.length + 1) {
    throw new Error(
      `route ${r.listener}/${r.name}: the data plane reports ${r.latency_buckets.length} latency buckets, /metrics knows ${LATENCY_BUCKETS_SECONDS.length} bounds + Inf (LATENCY_BUCKETS in http/stats.rs changed)`,
    );
  }
  const out: Sample[] = r.latency_buckets.map((n, i) => [{ ...labels, le: i < LATENCY_BUCKETS_SECONDS.length ? String(LATENCY_BUCKETS_SECONDS[i]) : '+Inf' }, n, '_bucket']);
  out.push([labels, r.latency_us_sum / 1e6, '_sum'], [labels, r.latency_buckets.at(-1)!, '_count']);
  return out;
}

/** Label values: backslash, double quote and newline are escaped. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Render families in the text format (`# HELP`, `# TYPE`, then the samples). */
export function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const [labels, value, suffix = ''] of f.samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      out.push(`${f.name}${suffix}${l ? `{${l}}` : ''} ${formatValue(value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

const HEALTH_STATES = ['up', 'down', 'unknown'] as const;
const OPERATOR_STATES = ['ready', 'drain', 'maint'] as const;

/** Parsed expiry per certificate file, reused while the file's mtime and size stay the same. */
const expiries = new Map<string, { stamp: string; notAfterMs: number }>();

/**
 * When the certificate in `file` expires (ms since the epoch). The file is
 * re-read when it changes, so a rotated certificate shows its new date; while
 * it cannot be read or parsed (mid-rotation), `fallback` (the date found when
 * the configuration was loaded) is used.
 */
function certificateExpiryMs(file: string, fallback: string): number {
  try {
    const st = statSync(file);
    const stamp = `${st.mtimeMs}:${st.size}`;
    const cached = expiries.get(file);
    if (cached?.stamp === stamp) return cached.notAfterMs;
    const notAfterMs = Date.parse(new X509Certificate(readFileSync(file)).validTo);
    expiries.set(file, { stamp, notAfterMs });
    return notAfterMs;
  } catch {
    return Date.parse(fallback);
  }
}

/** Open file descriptors of this process (Linux: `/proc/self/fd`), or null elsewhere. */
function openFds(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

/** The soft RLIMIT_NOFILE of this process (Linux: `/proc/self/limits`), or null elsewhere or when unlimited. */
function maxFds(): number | null {
  try {
    const m = /^Max open files\s+(\d+)\s/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Every metric family at this instant. */
export function collect(lb: AdminTarget): Family[] {
  const stats = lb.stats();
  const health = healthMap(lb);
  const fam = (name: string, type: Family['type'], help: string): Family => ({ name, type, help, samples: [] });

  const lTotal = fam('switchyard_listener_connections_total', 'counter', 'Connections accepted by the listener.');
  const lActive = fam('switchyard_listener_connections_active', 'gauge', 'Connections of the listener open now.');
  const lNoBackend = fam('switchyard_listener_no_backend_total', 'counter', 'Connections closed because no backend could be reached.');
  const lIdle = fam('switchyard_listener_idle_timeouts_total', 'counter', 'Connections closed by the idle timeout.');
  const lLocal = fam('switchyard_listener_local_errors_total', 'counter', 'Clients closed because this process ran out of file descriptors or memory (never counted against a backend).');
  const lAccept = fam('switchyard_listener_accept_errors_total', 'counter', 'Failed accept calls (e.g. EMFILE); the clients wait in the backlog.');
  const lTls = fam('switchyard_listener_tls_handshakes_total', 'counter', 'TLS handshakes completed by a terminating listener (resumed ones included).');
  const lTlsResumed = fam('switchyard_listener_tls_resumed_total', 'counter', 'TLS handshakes that resumed a session.');
  const lTlsVersion = fam('switchyard_listener_tls_version_total', 'counter', 'Completed TLS handshakes by protocol version: 1.2, 1.3.');
  const lTlsFail = fam('switchyard_listener_tls_failures_total', 'counter', 'Failed TLS handshakes by reason: timeout, sni (strict SNI refused), protocol.');
  const lSni = fam('switchyard_listener_sni_total', 'counter', 'Passthrough ClientHellos by outcome: routed, timeout, not_tls, oversized.');
  const certExpiry = fam(
    'switchyard_certificate_expiry_timestamp_seconds',
    'gauge',
    'When a certificate of a TLS-terminating listener expires (notAfter), seconds since the epoch; name is the first name it serves, cert its file.',
  );
  const lProxy = fam(
    'switchyard_listener_proxy_protocol_total',
    'counter',
    'PROXY protocol headers a listener expected, by result: accepted (relayed client), local (the sender\'s own check), untrusted, invalid, timeout (the last three closed).',
  );
  const lLifetime = fam('switchyard_listener_lifetime_ends_total', 'counter', 'Connections closed at the end of their max_lifetime.');
  const lRefused = fam('switchyard_listener_refused_total', 'counter', 'Connections closed at once by the listener, by reason: denied (allow/deny lists), source_limit (per_source.max_connections), rate (per_source.rate).');
  const lNoRoute = fam('switchyard_listener_no_route_total', 'counter', 'HTTP requests no route matched (answered 404 by Switchyard).');
  const rResponses = fam('switchyard_route_responses_total', 'counter', 'HTTP responses sent to clients by route and status class (1xx..5xx), Switchyard\'s own error responses included.');
  const rDuration = fam('switchyard_route_request_duration_seconds', 'histogram', 'Time from a request\'s arrival to its response head being sent, by route.');
  const rRetries = fam('switchyard_route_retries_total', 'counter', 'HTTP requests of the route sent again to another backend.');
  const rHttp2 = fam('switchyard_route_http2_requests_total', 'counter', 'Requests of the route that came as HTTP/2 streams.');
  const rResets = fam('switchyard_route_resets_total', 'counter', 'Responses of the route cut before their end: an HTTP/2 stream reset by the client or the backend, a connection closed mid-body.');
  const rGrpc = fam('switchyard_route_grpc_responses_total', 'counter', "gRPC calls of the route by the status they ended with (the backend's trailers, or Switchyard's own refusal: 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED ...); codes seen at least once.");
  const rActions = fam('switchyard_rule_actions_total', 'counter', 'What routes and policy rules did, by listener, rule (route name), tag and action: forwarded (tcp rules: connections), denied, redirected, rate_limited.');
  const udp = udpFamilies(fam);
  const httpListeners = new Set(lb.config.listeners.filter((l) => l.protocol === 'http').map((l) => l.name));
  for (const l of stats.listeners) {
    const labels = { listener: l.name, pool: l.pool };
    if (httpListeners.has(l.name)) lNoRoute.samples.push([labels, l.no_route]);
    for (const r of l.routes) {
      const al = { listener: l.name, rule: r.name, tag: r.tag };
      if (!httpListeners.has(l.name)) rActions.samples.push([{ ...al, action: 'forwarded' }, r.connections]);
      if (r.denied > 0) rActions.samples.push([{ ...al, action: 'denied' }, r.denied]);
      if (r.redirected > 0) rActions.samples.push([{ ...al, action: 'redirected' }, r.redirected]);
      if (r.rate_limited > 0) rActions.samples.push([{ ...al, action: 'rate_limited' }, r.rate_limited]);
      if (!httpListeners.has(l.name)) continue; // tcp rules: the connection counts above
      const rl = { listener: l.name, route: r.name, pool: r.pool };
      for (const c of STATUS_CLASSES) rResponses.samples.push([{ ...rl, class: c }, r[`responses_${c}`]]);
      rDuration.samples.push(...histogramSamples(rl, r));
      rRetries.samples.push([rl, r.retries]);
      rHttp2.samples.push([rl, r.http2_requests]);
      rResets.samples.push([rl, r.resets]);
      r.grpc_statuses.forEach((n, code) => {
        if (n > 0) rGrpc.samples.push([{ ...rl, code: GRPC_CODES[code] ?? String(code) }, n]);
      });
    }
    lTotal.samples.push([labels, l.accepted]);
    lActive.samples.push([labels, l.active]);
    lNoBackend.samples.push([labels, l.no_backend]);
    lIdle.samples.push([labels, l.idle_timeouts]);
    lLocal.samples.push([labels, l.local_errors]);
    lAccept.samples.push([labels, l.accept_errors]);
    if (l.proxy) for (const [result, n] of Object.entries(l.proxy)) lProxy.samples.push([{ ...labels, result }, n]);
    lLifetime.samples.push([labels, l.lifetime_ends]);
    lRefused.samples.push(
      [{ ...labels, reason: 'denied' }, l.refused_denied],
      [{ ...labels, reason: 'source_limit' }, l.refused_source_limit],
      [{ ...labels, reason: 'rate' }, l.refused_rate],
    );
    if (l.udp) udpSamples(udp, labels, l.udp);
    const t = l.tls;
    if (!t) continue;
    lTls.samples.push([labels, t.handshakes]);
    lTlsResumed.samples.push([labels, t.resumed]);
    lTlsVersion.samples.push([{ ...labels, version: '1.2' }, t.tls12], [{ ...labels, version: '1.3' }, t.tls13]);
    for (const [reason, n] of [['timeout', t.failures_timeout], ['sni', t.failures_sni], ['protocol', t.failures_protocol]] as const) {
      lTlsFail.samples.push([{ ...labels, reason }, n]);
    }
    for (const [outcome, n] of [['routed', t.sni_routed], ['timeout', t.sni_timeout], ['not_tls', t.sni_not_tls], ['oversized', t.sni_oversized]] as const) {
      lSni.samples.push([{ ...labels, outcome }, n]);
    }
  }
  for (const l of lb.config.listeners) {
    const seen = new Set<string>();
    for (const c of l.tls?.certificates ?? []) {
      if (seen.has(c.cert)) continue;
      seen.add(c.cert);
      certExpiry.samples.push([{ listener: l.name, name: c.names[0] ?? '', cert: c.cert }, certificateExpiryMs(c.cert, c.not_after) / 1000]);
    }
  }

  const bTotal = fam('switchyard_backend_connections_total', 'counter', 'Connections established to the backend (pools of HTTP routes: requests sent to it).');
  const bActive = fam('switchyard_backend_connections_active', 'gauge', 'Connections to the backend open now (pools of HTTP routes: requests in flight).');
  const bReused = fam('switchyard_backend_connections_reused_total', 'counter', 'HTTP requests sent to the backend on a reused keep-alive connection.');
  const bIdle = fam('switchyard_backend_connections_idle', 'gauge', 'Idle keep-alive connections to the backend kept for reuse now.');
  const b5xx = fam('switchyard_backend_responses_5xx_total', 'counter', 'HTTP responses with a 5xx status from the backend.');
  // The HTTP families belong to the pools an HTTP route sends to; a TCP-only pool has none.
  const httpPools = new Set(lb.config.listeners.filter((l) => l.http !== null).flatMap(poolsOf));
  const bIn = fam('switchyard_backend_bytes_in_total', 'counter', 'Bytes sent by clients towards the backend.');
  const bOut = fam('switchyard_backend_bytes_out_total', 'counter', 'Bytes sent by the backend back to clients.');
  const bErr = fam('switchyard_backend_connect_errors_total', 'counter', 'Failed connects to the backend by reason: refused (refused, unreachable, reset) or timeout.');
  const bTlsErr = fam('switchyard_backend_tls_errors_total', 'counter', 'Failed TLS handshakes to the backend (also counted in connect errors).');
  const bUp = fam('switchyard_backend_up', 'gauge', '1 if a new connection may go to the backend now (ready, not down, not ejected), else 0.');
  const bHealth = fam('switchyard_backend_health_state', 'gauge', 'Active health-check verdict: 1 for the current state, 0 for the others.');
  const bState = fam('switchyard_backend_state', 'gauge', 'Operator state (ready, drain, maint): 1 for the current state, 0 for the others.');
  const bEjected = fam('switchyard_backend_ejected', 'gauge', '1 while the backend is passively ejected, else 0.');
  const bWeight = fam('switchyard_backend_weight', 'gauge', 'Configured weight of the backend.');
  const bShare = fam('switchyard_backend_share_ratio', 'gauge', 'Share (0..1) of new connections/keys the backend gets with every backend of its tier eligible.');
  const bCheck = fam('switchyard_backend_check_duration_seconds', 'gauge', 'Duration of the last active health check.');
  const bConnect = fam(
    'switchyard_backend_connect_seconds',
    'summary',
    'Time of successful connects to the backend: _sum and _count since start (rate(_sum) / rate(_count) is the recent average).',
  );
  const pShareMin = fam('switchyard_pool_share_min_ratio', 'gauge', 'Smallest share (0..1) of new connections/keys of a primary backend of the pool (table balance; 1/N is perfect).');
  const pShareMax = fam('switchyard_pool_share_max_ratio', 'gauge', 'Largest share (0..1) of new connections/keys of a primary backend of the pool (table balance; 1/N is perfect).');
  const pActive = fam('switchyard_pool_connections_active', 'gauge', 'Connections of the pool open now.');
  const pSource = fam('switchyard_pool_membership_source', 'gauge', 'Where the pool\'s backends come from: 1 for each source (file, dns, etcd) it uses.');
  const pChanged = fam('switchyard_pool_membership_changed_timestamp_seconds', 'gauge', 'When the pool\'s set of backend addresses last changed (or the balancer started), Unix seconds.');
  const membership = lb.membership?.();
  const pQueue = fam('switchyard_pool_queue_waiting', 'gauge', 'Clients waiting in the pool\'s queue now (every backend they could use is at its max_connections).');
  const pQueued = fam('switchyard_pool_queued_total', 'counter', 'Clients that waited in the pool\'s queue (served or refused).');
  const pQueueWait = fam('switchyard_pool_queue_wait_seconds_total', 'counter', 'Total time clients waited in the pool\'s queue; divided by switchyard_pool_queued_total: the mean wait.');
  const pQueueRefused = fam('switchyard_pool_queue_refused_total', 'counter', 'Clients refused by the pool\'s queue, by reason: timeout (no slot freed in time), full (the queue was full, or there is none).');

  for (const p of stats.pools) {
    const pl = { pool: p.name };
    pShareMin.samples.push([pl, p.share_min]);
    pShareMax.samples.push([pl, p.share_max]);
    pActive.samples.push([pl, p.active]);
    const m = membership?.get(p.name);
    if (m) {
      for (const source of m.sources) pSource.samples.push([{ ...pl, source }, 1]);
      pChanged.samples.push([pl, Date.parse(m.changed_at) / 1000]);
    }
    pQueue.samples.push([pl, p.queue.waiting]);
    pQueued.samples.push([pl, p.queue.queued]);
    pQueueWait.samples.push([pl, p.queue.wait_ms / 1000]);
    pQueueRefused.samples.push([{ ...pl, reason: 'timeout' }, p.queue.timeouts], [{ ...pl, reason: 'full' }, p.queue.full]);
    for (const b of p.backends) {
      const labels = { pool: p.name, backend: b.address };
      bTotal.samples.push([labels, b.total]);
      bActive.samples.push([labels, b.active]);
      bIn.samples.push([labels, b.bytes_in]);
      bOut.samples.push([labels, b.bytes_out]);
      bErr.samples.push([{ ...labels, reason: 'refused' }, b.connect_errors]);
      bErr.samples.push([{ ...labels, reason: 'timeout' }, b.connect_timeouts]);
      bTlsErr.samples.push([labels, b.tls_errors]);
      bUp.samples.push([labels, b.available ? 1 : 0]);
      for (const s of HEALTH_STATES) bHealth.samples.push([{ ...labels, state: s }, b.health === s ? 1 : 0]);
      for (const s of OPERATOR_STATES) bState.samples.push([{ ...labels, state: s }, b.state === s ? 1 : 0]);
      bEjected.samples.push([labels, b.ejected ? 1 : 0]);
      bWeight.samples.push([labels, b.weight]);
      bShare.samples.push([labels, b.share]);
      const last = health.get(`${p.name}/${b.address}`)?.last;
      if (last) bCheck.samples.push([labels, last.duration_ms / 1000]);
      bConnect.samples.push([labels, b.connect_time_us_sum / 1e6, '_sum'], [labels, b.connects, '_count']);
      if (httpPools.has(p.name)) {
        bReused.samples.push([labels, b.conns_reused]);
        bIdle.samples.push([labels, b.conns_idle]);
        b5xx.samples.push([labels, b.responses_5xx]);
      }
    }
  }

  const policyDecisions = fam('switchyard_policy_decisions_total', 'counter', 'Decisions of control-loop policies by policy and action (set_weight, drain, ready, promoted, rolled_back, ...); see /api/policies/decisions for each one\'s reason.');
  for (const c of lb.policyDecisionCounts?.() ?? []) policyDecisions.samples.push([{ policy: c.policy, action: c.action }, c.count]);

  const usage = process.cpuUsage();
  const fds = openFds();
  const fdLimit = maxFds();
  const processFamilies: Family[] = [
    { name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident memory size in bytes.', samples: [[{}, process.memoryUsage.rss()]] },
    { name: 'process_cpu_seconds_total', type: 'counter', help: 'Total user and system CPU time spent in seconds (every thread, data plane included).', samples: [[{}, (usage.user + usage.system) / 1e6]] },
    { name: 'process_start_time_seconds', type: 'gauge', help: 'Start time of the process since unix epoch in seconds.', samples: [[{}, Math.round((Date.now() - process.uptime() * 1000) / 10) / 100]] },
    ...(fds === null ? [] : [{ name: 'process_open_fds', type: 'gauge' as const, help: 'Number of open file descriptors.', samples: [[{}, fds]] satisfies Sample[] }]),
    ...(fdLimit === null ? [] : [{ name: 'process_max_fds', type: 'gauge' as const, help: 'Maximum number of open file descriptors (the soft RLIMIT_NOFILE).', samples: [[{}, fdLimit]] satisfies Sample[] }]),
  ];
  const global: Family[] = [
    {
      name: 'switchyard_build_info',
      type: 'gauge',
      help: 'Always 1; the labels say which Switchyard (version) runs on which Node.js, platform and architecture.',
      samples: [[{ version: packageVersion(), node_version: process.version, platform: process.platform, arch: process.arch }, 1]],
    },
    { name: 'switchyard_connections_active', type: 'gauge', help: 'Client connections open now, every listener.', samples: [[{}, stats.connections_active]] },
    {
      name: 'switchyard_max_connections',
      type: 'gauge',
      help: 'The balancer-wide connection limit in effect (max_connections, else derived from ulimit -n); at it every listener stops accepting.',
      samples: [[{}, stats.max_connections]],
    },
    {
      name: 'switchyard_worker_connections_active',
      type: 'gauge',
      help: 'Client connections open now, per data-plane worker thread.',
      samples: stats.worker_connections.map((n, i) => [{ worker: String(i) }, n]),
    },
    { name: 'switchyard_splice_leases_total', type: 'counter', help: 'Connection directions moved to splice(2).', samples: [[{}, stats.splice_leases_total]] },
    { name: 'switchyard_pipes_in_use', type: 'gauge', help: 'Kernel pipes in use for splice(2).', samples: [[{}, stats.pipes_in_use]] },
    {
      name: 'switchyard_pipes_max',
      type: 'gauge',
      help: 'Most splice(2) pipes lent at once (a quarter of the connection limit, within ulimit -n); beyond it connections copy.',
      samples: [[{}, stats.max_pipes]],
    },
    {
      name: 'switchyard_hook_calls_total',
      type: 'counter',
      help: 'Calls of opt-in hooks by how they ended: answered, or the fallback after timeout (no answer within the budget), error (the function threw), full (too many calls waiting), unregistered (no function of that name), invalid (an answer that is not a usable decision).',
      samples: stats.hooks.flatMap((h) =>
        (['answered', 'timeout', 'error', 'full', 'unregistered', 'invalid'] as const).map((outcome): Sample => [{ hook: h.name, outcome }, h[outcome]]),
      ),
    },
    {
      name: 'switchyard_hook_late_answers_total',
      type: 'counter',
      help: 'Hook answers that arrived after their call had used its fallback (dropped).',
      samples: stats.hooks.map((h): Sample => [{ hook: h.name }, h.late]),
    },
    {
      name: 'switchyard_tables_built_total',
      type: 'counter',
      help: 'Tables the data plane built for updates, by kind: pool (backends and selector tables), tls_config (a listener\'s certificates). Unchanged ones are reused.',
      samples: [
        [{ kind: 'pool' }, stats.builds.pools],
        [{ kind: 'tls_config' }, stats.builds.tls_configs],
      ],
    },
  ];
  return [
    ...global,
    lTotal,
    lActive,
    lNoBackend,
    lIdle,
    lLocal,
    lAccept,
    lProxy,
    lRefused,
    lLifetime,
    lTls,
    lTlsResumed,
    lTlsVersion,
    lTlsFail,
    lSni,
    lNoRoute,
    rResponses,
    rDuration,
    rRetries,
    rHttp2,
    rResets,
    rGrpc,
    rActions,
    ...Object.values(udp),
    certExpiry,
    pActive,
    pSource,
    pChanged,
    pQueue,
    pQueued,
    pQueueWait,
    pQueueRefused,
    pShareMin,
    pShareMax,
    bTotal,
    bActive,
    bIn,
    bOut,
    bErr,
    bTlsErr,
    bUp,
    bHealth,
    bState,
    bEjected,
    bWeight,
    bShare,
    bCheck,
    bConnect,
    bReused,
    bIdle,
    b5xx,
    policyDecisions,
    ...processFamilies,
  ];
}

/** The `/metrics` body. */
export function metricsText(lb: AdminTarget): string {
  return render(collect(lb));
}
