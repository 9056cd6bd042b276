// Summaries (medians, median of per-round ratios), the markdown table, the JSON and the chart.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { takesPart } from './peers.mjs';

/** The TLS workloads' certificate key types: tls-ka/tls-hs (ECDSA P-256), tls-ka-rsa/tls-hs-rsa. */
export const TLS_KINDS = [
  { suffix: '', prefix: 'tls', name: 'ECDSA', tag: 'EC' }, // metric keys tls_ka_rps, …
  { suffix: '-rsa', prefix: 'tls_rsa', name: 'RSA', tag: 'RSA' }, // tls_rsa_ka_rps, …
];

/**
 * Proxy CPU µs and context switches per request (`unit`) of a wrk workload: lower is better.
 * `extra` is merged into both (the HTTP ones: their base and group); `tag` starts the chart labels.
 */
function perRequestCost(wl, unit, extra = {}, tag = wl) {
  const key = wl.replace(/-/g, '_');
  const m = (k, field, head, short, digits) => ({ key: `${key}_${k}`, wl, field, head, short, better: 'lower', base: 'haproxy', digits, proxyOnly: true, ...extra });
  return [
    m('cpu_us', 'cpu_us_per_req', `${wl} proxy CPU µs/${unit}`, `${tag} CPU/${unit}`, 2),
    m('ctxsw', 'ctx_per_req', `${wl} ctx switches/${unit}`, `${tag} cs/${unit}`, 3),
  ];
}

/**
 * The HTTP (L7) metrics of a wrk workload (issue 14): req/s, p50, p99 and the proxy's cost per
 * request, compared to HAProxy mode http; `http: true` puts them in the HTTP (L7) table.
 */
function httpWrkMetrics(wl, name) {
  // short chart labels: h-ka, h-close, h-routed
  return requestMetrics(wl, name, wl.replace(/^http-/, 'h-'), { base: 'haproxy-http', http: true });
}

/** req/s, p50, p99 and the proxy's cost per request of workload `wl`; `extra`: its base and table. */
function requestMetrics(wl, name, tag, extra) {
  const key = wl.replace(/-/g, '_');
  const m = (k, field, head, short, better, digits) => ({ key: `${key}_${k}`, wl, field, head, short, better, digits, ...extra });
  return [
    m('rps', 'rps', `${name} req/s`, `${tag} req/s`, 'higher', 0),
    m('p50', 'p50_ms', `${name} p50 ms`, `${tag} p50`, 'lower', 3),
    m('p99', 'p99_ms', `${name} p99 ms`, `${tag} p99`, 'lower', 3),
    ...perRequestCost(wl, 'req', extra, tag),
  ];
}

/**
 * The HTTP/2 metrics of a workload (issue 15): req/s, p50, p99 and the proxy's cost per request,
 * compared to HAProxy (`proto h2`); `h2: true` puts them in the HTTP/2 table.
 */
function h2Metrics(wl, name, tag) {
  return requestMetrics(wl, name, tag, { base: 'haproxy-h2', h2: true });
}

/**
 * The UDP metrics of a workload (issue 17): exchanges/s, loss, round-trip p99 and the proxy's
 * cost per exchange, compared to nginx stream UDP in the same mode (`udp-flow`: a session per
 * flow, `udp-dgram`: per datagram); `udp: true` puts them in the UDP table. Loss is not charted
 * (a ratio of percentages near zero says nothing), nor shown as a ratio.
 */
function udpMetrics(wl, name, tag) {
  const key = wl.replace(/-/g, '_');
  const extra = { base: 'nginx-udp', udp: true };
  const m = (k, field, head, short, better, digits, more = {}) => ({ key: `${key}_${k}`, wl, field, head, short, better, digits, ...extra, ...more });
  return [
    m('rate', 'rps', `${name} exchanges/s`, `${tag} x/s`, 'higher', 0),
    m('loss', 'loss_pct', `${name} loss %`, `${tag} loss`, 'lower', 3, { noRatio: true }),
    m('p99', 'p99_ms', `${name} p99 ms`, `${tag} p99`, 'lower', 3),
    ...perRequestCost(wl, 'exchange', extra, tag),
  ];
}

/** The reported metrics: which workload measures them, and what they are compared to. */
export const METRICS = [
  { key: 'ka_rps', wl: 'ka', field: 'rps', head: 'keep-alive req/s', short: 'ka req/s', better: 'higher', base: 'haproxy', digits: 0 },
  { key: 'ka_p50', wl: 'ka', field: 'p50_ms', head: 'ka p50 ms', short: 'ka p50', better: 'lower', base: 'haproxy', digits: 3 },
  { key: 'ka_p99', wl: 'ka', field: 'p99_ms', head: 'ka p99 ms', short: 'ka p99', better: 'lower', base: 'haproxy', digits: 3 },
  // the proxy's own cost per request of the ka run and per connection of the close run
  ...perRequestCost('ka', 'req'),
  { key: 'close_cps', wl: 'close', field: 'cps', head: 'close conn/s', short: 'close conn/s', better: 'higher', base: 'haproxy', digits: 0 },
  { key: 'close_p99', wl: 'close', field: 'p99_ms', head: 'close p99 ms', short: 'close p99', better: 'lower', base: 'haproxy', digits: 3 },
  ...perRequestCost('close', 'conn'),
  { key: 'bulk_up', wl: 'bulk', field: 'up_gbps', head: 'bulk up Gbit/s', short: 'bulk up', better: 'higher', base: 'haproxy-splice', digits: 2 },
  { key: 'bulk_down', wl: 'bulk', field: 'down_gbps', head: 'bulk down Gbit/s', short: 'bulk down', better: 'higher', base: 'haproxy-splice', digits: 2 },
  { key: 'mem', wl: 'mem', field: 'kib_per_conn', head: 'idle KiB/conn', short: 'KiB/conn', better: 'lower', base: 'haproxy', digits: 2, proxyOnly: true },
  { key: 'cpu_gb', wl: 'bulk', field: 'cpu_per_gb', head: 'CPU s/GB', short: 'CPU/GB', better: 'lower', base: 'haproxy-splice', digits: 3, proxyOnly: true, needs: 'cpu' },
  { key: 'cpu_100k', wl: 'close', field: 'cpu_per_100k', head: 'CPU s/100k conn', short: 'CPU/100k', better: 'lower', base: 'haproxy', digits: 2, proxyOnly: true, needs: 'cpu' },
  // TLS termination (issue 7), once per certificate key type: only the peers that terminate TLS
  // (HAProxy, nginx, Switchyard)
  ...TLS_KINDS.flatMap(({ suffix, prefix, name, tag }) => {
    const m = (key, wl, field, head, short, better, digits) => ({ key: `${prefix}_${key}`, wl: `${wl}${suffix}`, field, head, short, better, base: 'haproxy', digits, tlsOnly: true });
    return [
      m('ka_rps', 'tls-ka', 'rps', `TLS ${name} keep-alive req/s`, `${tag} ka req/s`, 'higher', 0),
      m('ka_p99', 'tls-ka', 'p99_ms', `TLS ${name} ka p99 ms`, `${tag} ka p99`, 'lower', 3),
      m('hs_cps', 'tls-hs', 'cps', `TLS ${name} full handshakes/s`, `${tag} hs/s`, 'higher', 0),
      m('hs_p99', 'tls-hs', 'p99_ms', `TLS ${name} hs p99 ms`, `${tag} hs p99`, 'lower', 3),
      m('hs_cpu', 'tls-hs', 'cpu_per_100k', `CPU s/100k TLS ${name} hs`, `${tag} hs CPU`, 'lower', 2),
    ];
  }),
  // HTTP (L7, issue 14): only the HTTP peers and direct, in their own table
  ...httpWrkMetrics('http-ka', 'HTTP keep-alive'),
  ...httpWrkMetrics('http-close', 'HTTP close'),
  ...httpWrkMetrics('http-routed', 'HTTP routed'),
  { key: 'http_mem', wl: 'http-mem', field: 'kib_per_conn', head: 'HTTP idle KiB/conn', short: 'h KiB/conn', better: 'lower', base: 'haproxy-http', digits: 2, proxyOnly: true, http: true },
  // HTTP/2 (issue 15): only the HTTP/2 peers, in their own table
  ...h2Metrics('h2-1', 'h2 1 stream/conn', 'h2-1'),
  ...h2Metrics('h2-many', 'h2 64 streams/conn', 'h2-m'),
  ...h2Metrics('grpc-unary', 'gRPC unary', 'grpc'),
  // UDP (issue 17): only the UDP peers and direct, in their own table
  ...udpMetrics('udp-flow', 'UDP per flow', 'udp-f'),
  ...udpMetrics('udp-dgram', 'UDP per datagram', 'udp-d'),
];

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Whether `peer` has a row for metric `mt`: HTTP metrics for the HTTP peers and direct, the rest for the others. */
function inTable(peer, mt) {
  // the UDP metrics for the UDP peers and direct, and those peers have no other rows
  if (mt.udp || peer.udp) return Boolean(mt.udp) && (Boolean(peer.udp) || Boolean(peer.direct));
  // the HTTP/2 metrics for the HTTP/2 peers only, and those peers have no other rows
  if (mt.h2 || peer.h2) return Boolean(mt.h2) && Boolean(peer.h2);
  return peer.direct || Boolean(mt.http) === Boolean(peer.http);
}

export function activeMetrics(workloads) {
  return METRICS.filter((m) => workloads.includes(m.wl) && (!m.needs || workloads.includes(m.needs)));
}

/**
 * summary[threads][peer] = { status, metrics: { key: { median, ratio, n, values, ratios } }, errors: [] }
 */
export function summarize({ measurements, peers, threadsList, workloads }) {
  const metrics = activeMetrics(workloads);
  const summary = {};
  for (const threads of threadsList) {
    summary[threads] = {};
    const ms = measurements.filter((m) => m.threads === threads);
    const rounds = [...new Set(ms.map((m) => m.round))];
    for (const peer of peers) {
      const mine = ms.filter((m) => m.peer === peer.name);
      const entry = { label: peer.label, status: 'ok', metrics: {}, errors: [] };
      if (peer.unavailableReason) entry.status = peer.unavailableReason;
      else if (mine.length && mine.every((m) => m.startError)) entry.status = `failed to start: ${mine[0].startError}`;
      for (const e of mine.filter((m) => m.error || m.startError)) {
        const msg = `${e.workload} round ${e.round}: ${e.startError ? `failed to start: ${e.startError}` : e.error}`;
        entry.errors.push(msg);
      }
      for (const mt of metrics) {
        if (mt.proxyOnly && peer.direct) continue;
        if (mt.tlsOnly && !peer.tls) continue;
        if (!inTable(peer, mt)) continue;
        const values = [];
        const ratios = [];
        const perRound = {};
        for (const r of rounds) {
          const mine1 = mine.find((m) => m.round === r && m.workload === mt.wl);
          const v = mine1?.metrics?.[mt.field];
          if (typeof v !== 'number' || !Number.isFinite(v)) continue;
          values.push(v);
          perRound[r] = v;
          const base = ms.find((m) => m.round === r && m.workload === mt.wl && m.peer === mt.base);
          const b = base?.metrics?.[mt.field];
          if (typeof b === 'number' && b > 0) ratios.push(v / b);
        }
        entry.metrics[mt.key] = { median: median(values), ratio: median(ratios), n: values.length, values, ratios, perRound };
      }
      summary[threads][peer.name] = entry;
    }
  }
  return summary;
}

function fmtNum(v, digits) {
  if (v == null) return '—';
  if (digits === 0) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(Math.min(digits, 1));
  return v.toFixed(digits);
}

/** Median over rounds of (peer `x` / peer `y`) of metric `key`, measured in the same round (`s`: summary[threads]). */
function pairRatio(s, key, x, y) {
  const a = s[x]?.status === 'ok' ? s[x].metrics?.[key] : null;
  const b = s[y]?.status === 'ok' ? s[y].metrics?.[key] : null;
  if (!a || !b) return null;
  const rs = [];
  for (const [round, v] of Object.entries(a.perRound)) if (b.perRound[round] > 0) rs.push(v / b.perRound[round]);
  return median(rs);
}

/** The issue's targets, checked for Switchyard against the medians of per-round ratios. */
export function targetChecks(summary, threads) {
  const s = summary[threads];
  const sy = s?.switchyard;
  if (!sy || sy.status !== 'ok') return null;
  const ratioTo = (key, peer) => pairRatio(s, key, 'switchyard', peer);
  const rows = [];
  const add = (what, value, op, limit) => {
    if (value == null) return rows.push({ what, value: null, ok: null, want: `${op} ${limit}` });
    rows.push({ what, value, ok: op === '≥' ? value >= limit : value <= limit, want: `${op} ${limit}` });
  };
  const r = (k) => sy.metrics[k]?.ratio ?? null;
  if (sy.metrics.ka_rps) add('keep-alive req/s vs HAProxy', r('ka_rps'), '≥', 1.0);
  if (sy.metrics.ka_p99) add('keep-alive p99 vs HAProxy', r('ka_p99'), '≤', 1.1);
  if (sy.metrics.close_cps) add('conn/s vs HAProxy', r('close_cps'), '≥', 1.0);
  if (sy.metrics.close_p99) add('close p99 vs HAProxy', r('close_p99'), '≤', 1.1);
  if (sy.metrics.bulk_up) add('bulk up vs HAProxy+splice', r('bulk_up'), '≥', 1.0);
  if (sy.metrics.bulk_down) add('bulk down vs HAProxy+splice', r('bulk_down'), '≥', 1.0);
  if (sy.metrics.mem) add('idle KiB/conn vs HAProxy', r('mem'), '≤', 1.0);
  for (const { prefix: k, name } of TLS_KINDS) {
    if (sy.metrics[`${k}_ka_rps`]) add(`TLS ${name} keep-alive req/s vs HAProxy (issue 7)`, r(`${k}_ka_rps`), '≥', 1.0);
    if (sy.metrics[`${k}_hs_cps`]) add(`TLS ${name} full handshakes/s vs HAProxy (issue 7)`, r(`${k}_hs_cps`), '≥', 1.0);
  }
  // Both with TCP_DEFER_ACCEPT (the connection reaches the proxy with its request)
  const deferred = (key) => pairRatio(s, key, 'switchyard-defer', 'haproxy-defer');
  if (deferred('close_cps') != null) {
    add('conn/s vs HAProxy, both with defer-accept', deferred('close_cps'), '≥', 1.0);
    add('close p99 vs HAProxy, both with defer-accept', deferred('close_p99'), '≤', 1.1);
  }
  if (s.node?.status === 'ok') {
    if (sy.metrics.ka_rps) add('keep-alive req/s vs plain Node', ratioTo('ka_rps', 'node'), '≥', 2.0);
    if (sy.metrics.close_cps) add('conn/s vs plain Node', ratioTo('close_cps', 'node'), '≥', 2.0);
    if (sy.metrics.bulk_up) add('bulk up vs plain Node', ratioTo('bulk_up', 'node'), '≥', 2.0);
    if (sy.metrics.bulk_down) add('bulk down vs plain Node', ratioTo('bulk_down', 'node'), '≥', 2.0);
  }
  return rows;
}

/**
 * The HTTP targets of issue 14, checked for Switchyard's HTTP peer: req/s ≥ 1.0× HAProxy mode
 * http with p99 ≤ 1.1× (each wrk workload), ≥ 3× the Node http-proxy, idle KiB/conn ≤ HAProxy's.
 */
export function httpTargetChecks(summary, threads) {
  const s = summary[threads];
  const sy = s?.['switchyard-http'];
  if (!sy || sy.status !== 'ok') return null;
  const rows = [];
  const add = (what, value, op, limit) => rows.push({ what, value, ok: value == null ? null : op === '≥' ? value >= limit : value <= limit, want: `${op} ${limit}` });
  const r = (k) => sy.metrics[k]?.ratio ?? null;
  const workloads = [['http_ka', 'HTTP keep-alive'], ['http_close', 'HTTP close'], ['http_routed', 'HTTP routed']];
  for (const [k, name] of workloads) {
    if (!sy.metrics[`${k}_rps`]) continue;
    add(`${name} req/s vs HAProxy http`, r(`${k}_rps`), '≥', 1.0);
    add(`${name} p99 vs HAProxy http`, r(`${k}_p99`), '≤', 1.1);
  }
  if (sy.metrics.http_mem) add('HTTP idle KiB/conn vs HAProxy http', r('http_mem'), '≤', 1.0);
  if (s['node-http-proxy']?.status === 'ok') {
    for (const [k, name] of workloads) {
      if (sy.metrics[`${k}_rps`]) add(`${name} req/s vs Node http-proxy`, pairRatio(s, `${k}_rps`, 'switchyard-http', 'node-http-proxy'), '≥', 3.0);
    }
  }
  return rows;
}

/**
 * The UDP target of issue 17, checked for Switchyard's UDP peer: exchanges/s ≥ 1.5× nginx per
 * flow (udp-flow, ratio per round) with 0 % loss (in every round).
 */
export function udpTargetChecks(summary, threads) {
  const s = summary[threads];
  const sy = s?.['switchyard-udp'];
  if (!sy || sy.status !== 'ok' || !sy.metrics.udp_flow_rate) return null;
  const rate = sy.metrics.udp_flow_rate.ratio ?? null;
  const losses = sy.metrics.udp_flow_loss?.values ?? [];
  const worst = losses.length ? Math.max(...losses) : null;
  return [
    { what: 'UDP per-flow exchanges/s vs nginx per-flow', value: rate, ok: rate == null ? null : rate >= 1.5, want: '≥ 1.5' },
    { what: 'UDP per-flow loss, worst round (%, not a ratio)', value: worst, ok: worst == null ? null : worst === 0, want: '= 0 %', unit: '%' },
  ];
}

/** The rows of one results table (`metrics`) at `threads`; errors of its peers go to `notes`. */
function table(L, { summary, peers, threads, metrics, notes }) {
  const head = ['peer', ...metrics.map((m) => `${m.head} ${m.better === 'higher' ? '↑' : '↓'}`)];
  L.push(`| ${head.join(' | ')} |`);
  L.push(`| ${head.map((_, i) => (i ? '---:' : '---')).join(' | ')} |`);
  for (const peer of peers) {
    const e = summary[threads][peer.name];
    // the PROXY-header peers have their own table (proxyProtocolTable), against their own base
    if (!e || !inTable(peer, metrics[0]) || peer.proxyProtocolOf) continue;
    // a peer none of the selected workloads applies to (e.g. direct with only TLS workloads)
    if (e.status === 'ok' && metrics.every((m) => !e.metrics[m.key])) continue;
    const cells = [peer.label];
    if (e.status !== 'ok') {
      cells.push(e.status.replace(/\|/g, '/'), ...metrics.slice(1).map(() => '—'));
    } else {
      for (const m of metrics) {
        const v = e.metrics[m.key];
        // n/a: not measured for this peer (a workload or thread count it does not run)
        if (!v || !takesPart(peer, m.wl, threads)) cells.push('n/a');
        else if (v.median == null) cells.push('failed');
        else {
          const ratio = v.ratio != null && peer.name !== m.base && !m.noRatio ? ` (${v.ratio.toFixed(2)}×)` : '';
          cells.push(`${fmtNum(v.median, m.digits)}${ratio}`);
        }
      }
      for (const err of e.errors) notes.push(`${peer.label}: ${err}`);
    }
    L.push(`| ${cells.join(' | ')} |`);
  }
  L.push('');
}

/** The PROXY-header table's columns: the metrics the header may cost (issue 16). */
const PROXY_PROTOCOL_KEYS = ['ka_rps', 'close_cps', 'close_p99', 'close_cpu_us'];
/** The peer whose ratio follows the slash in the PROXY-header table: HAProxy with the header too. */
const PROXY_PROTOCOL_BASE = 'haproxy-pp2';

/**
 * The peers that send a PROXY v2 header to the backends (`proxyProtocolOf`), at `threads`: each
 * cell's ratio is to the same proxy without the header in the same round (the header's cost),
 * and Switchyard's also to HAProxy with the header. Errors of its peers go to `notes`.
 */
function proxyProtocolTable(L, { summary, peers, threads, metrics, notes }) {
  const s = summary[threads];
  const rows = peers.filter((p) => p.proxyProtocolOf && s[p.name]);
  const cols = PROXY_PROTOCOL_KEYS.map((k) => metrics.find((m) => m.key === k)).filter(Boolean);
  if (!rows.length || !cols.length) return;
  const per = `${threads} worker thread${threads > 1 ? 's' : ''}`;
  L.push(`### PROXY protocol v2 to the backends, ${per} per proxy`, '');
  L.push(
    'In parentheses: the median over rounds of the ratio to the same proxy without the header',
    '(its cost: 1.00× = free), and after the slash the ratio to HAProxy + send-proxy-v2, both',
    'measured in the same round.',
    '',
  );
  const head = ['peer', ...cols.map((m) => `${m.head} ${m.better === 'higher' ? '↑' : '↓'}`)];
  L.push(`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i ? '---:' : '---')).join(' | ')} |`);
  const fmtRatio = (r) => (r == null ? '—' : `${r.toFixed(2)}×`);
  for (const peer of rows) {
    const e = s[peer.name];
    if (e.status !== 'ok') {
      L.push(`| ${[peer.label, e.status.replace(/\|/g, '/'), ...cols.slice(1).map(() => '—')].join(' | ')} |`);
      continue;
    }
    const cells = [peer.label];
    for (const m of cols) {
      const v = e.metrics[m.key];
      if (!v || !takesPart(peer, m.wl, threads)) cells.push('n/a');
      else if (v.median == null) cells.push('failed');
      else {
        const ratios = [pairRatio(s, m.key, peer.name, peer.proxyProtocolOf)];
        if (peer.name !== PROXY_PROTOCOL_BASE) ratios.push(pairRatio(s, m.key, peer.name, PROXY_PROTOCOL_BASE));
        cells.push(`${fmtNum(v.median, m.digits)} (${ratios.map(fmtRatio).join(' / ')})`);
      }
    }
    for (const err of e.errors) notes.push(`${peer.label}: ${err}`);
    L.push(`| ${cells.join(' | ')} |`);
  }
  L.push('');
}

/** A targets table (rows of targetChecks / httpTargetChecks) under its title. */
function targetsTable(L, title, checks) {
  L.push(title, '');
  L.push('| target | median ratio | want | met |', '| --- | ---: | --- | --- |');
  for (const c of checks) L.push(`| ${c.what} | ${c.value == null ? '—' : c.unit ? `${c.value.toFixed(3)} ${c.unit}` : `${c.value.toFixed(2)}×`} | ${c.want} | ${c.ok == null ? '—' : c.ok ? 'yes' : '**no**'} |`);
  L.push('');
}

export function markdown({ machine, config, summary, peers, threadsList, workloads }) {
  const metrics = activeMetrics(workloads);
  const L = [];
  L.push('# Switchyard benchmark — latest run', '');
  L.push(`Run ${machine.date}; ${config.rounds} round(s) × ${config.duration}s per measurement; workloads ${workloads.join(', ')}.`, '');
  L.push('## Machine', '');
  L.push('| | |', '| --- | --- |');
  L.push(`| cores (nproc) | ${machine.nproc} |`);
  L.push(`| CPU | ${machine.cpu} |`);
  L.push(`| memory | ${machine.memory} |`);
  L.push(`| kernel | ${machine.kernel} |`);
  for (const [k, v] of Object.entries(machine.versions)) L.push(`| ${k} | ${v} |`);
  L.push(`| load average at start / end | ${machine.loadStart} / ${machine.loadEnd ?? '—'} |`);
  if (machine.busy?.length) L.push(`| other CPU users seen during the run | ${machine.busy.join(', ')} |`);
  L.push('');
  L.push(
    'Cells: median over rounds, and in parentheses the median over rounds of the ratio to HAProxy',
    'measured in the same round (to HAProxy without splice for request and connection metrics, to',
    'HAProxy with `option splice-auto` for throughput and CPU per GB). ↑ = higher is better,',
    '↓ = lower is better. All peers, the backends and the load generators share the same cores.',
    'Proxy CPU µs and ctx switches per req (ka) or per conn (close): utime + stime and voluntary +',
    'involuntary context switches of all the proxy\'s processes and threads during the wrk run,',
    'divided by the requests wrk completed (lower is better).',
    '',
  );
  const l4Metrics = metrics.filter((m) => !m.http && !m.h2 && !m.udp);
  const udpTable = metrics.filter((m) => m.udp);
  const httpMetrics = metrics.filter((m) => m.http);
  const h2Table = metrics.filter((m) => m.h2);
  if (httpMetrics.length) {
    L.push(
      'HTTP (L7) tables: the HTTP reverse proxies and direct, ratios to HAProxy `mode http` measured in',
      'the same round; CPU µs and ctx switches per request (with `http-close` a request is a connection).',
      '',
    );
  }
  for (const threads of threadsList) {
    const per = `${threads} worker thread${threads > 1 ? 's' : ''}`;
    L.push(`## ${per} per proxy`, '');
    const notes = [];
    if (l4Metrics.length) {
      table(L, { summary, peers, threads, metrics: l4Metrics, notes });
      const checks = targetChecks(summary, threads);
      if (checks?.length) targetsTable(L, `Targets for Switchyard at ${threads} thread${threads > 1 ? 's' : ''} (issue 3; TLS: issue 7):`, checks);
      proxyProtocolTable(L, { summary, peers, threads, metrics: l4Metrics, notes });
    }
    if (httpMetrics.length) {
      L.push(`### HTTP (L7), ${per} per proxy`, '');
      table(L, { summary, peers, threads, metrics: httpMetrics, notes });
      const checks = httpTargetChecks(summary, threads);
      if (checks?.length) targetsTable(L, `HTTP targets for Switchyard at ${threads} thread${threads > 1 ? 's' : ''} (issue 14):`, checks);
      else if (summary[threads]['switchyard-http']) L.push(`HTTP targets (issue 14) not checked: Switchyard http ${summary[threads]['switchyard-http'].status === 'ok' ? 'has no HTTP measurement' : 'did not run'}.`, '');
    }
    if (h2Table.length) {
      L.push(`### HTTP/2 and gRPC, ${per} per proxy`, '');
      L.push('Ratios to HAProxy `mode http` with `bind … proto h2` measured in the same round. Issue 15 targets for Switchyard: req/s ≥ 1.0×, p99 ≤ 1.1×.', '');
      table(L, { summary, peers, threads, metrics: h2Table, notes });
    }
    if (udpTable.length) {
      L.push(`### UDP, ${per} per proxy`, '');
      L.push(
        'Ratios to nginx `stream` UDP in the same mode, measured in the same round: `udp-flow` a session per client',
        'address (Switchyard `udp.responses: 0`), `udp-dgram` a session per datagram (nginx `proxy_responses 1;',
        'proxy_requests 1`, Switchyard `udp.responses: 1`). 64 flows (sockets) × 64-byte request/reply, one request in',
        'flight per flow; loss: requests never answered (1 s timeout); CPU and ctx switches per exchange of the proxy.',
        '',
      );
      table(L, { summary, peers, threads, metrics: udpTable, notes });
      const checks = udpTargetChecks(summary, threads);
      if (checks?.length) targetsTable(L, `UDP targets for Switchyard at ${threads} thread${threads > 1 ? 's' : ''} (issue 17):`, checks);
    }
    if (notes.length) {
      L.push('Errors during this thread count:', '');
      for (const n of [...new Set(notes)].slice(0, 30)) L.push(`- ${n.replace(/\n/g, ' ')}`);
      L.push('');
    }
  }
  const extras = config.notes ?? [];
  if (extras.length) {
    L.push('## Notes', '');
    for (const n of extras) L.push(`- ${n}`);
    L.push('');
  }
  L.push('Chart of the ratios: `latest.png` (`latest.svg`); every measurement: `latest.json`.', '');
  return L.join('\n');
}

// ---------------------------------------------------------------- chart

const COLORS = {
  direct: '#9e9e9e',
  floor: '#8c564b',
  haproxy: '#1f77b4',
  'haproxy-splice': '#6baed6',
  nginx: '#2ca02c',
  node: '#ff7f0e',
  switchyard: '#d62728',
  'haproxy-http': '#3949ab',
  'nginx-http': '#98df8a',
  caddy: '#17becf',
  'node-http-proxy': '#ffbb78',
  'switchyard-http': '#8b0000',
  'haproxy-h2': '#0d47a1',
  'nginx-h2': '#33691e',
  'switchyard-h2': '#b71c1c',
  'floor-udp': '#8d6e63',
  'nginx-udp': '#7cb342',
  'switchyard-udp': '#e53935',
};

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Grouped bars of the ratios (one panel per thread count); returns { svg, rects } for the PNG. */
export function chart({ summary, peers, threadsList, workloads }) {
  const metrics = activeMetrics(workloads).filter((m) => !m.noRatio);
  // the PROXY-header peers' ratios are to their own base, in their own table: not charted
  const shown = peers.filter(
    (p) => !p.proxyProtocolOf && threadsList.some((t) => summary[t][p.name]?.status === 'ok' && metrics.some((m) => summary[t][p.name].metrics[m.key])),
  );
  const barW = 14;
  // each metric's bars: the peers of its table (HTTP metrics: the HTTP peers and direct)
  const barsOf = (m) => shown.filter((p) => inTable(p, m));
  const groupW = Math.max(1, ...metrics.map((m) => barsOf(m).length)) * barW + 26;
  const left = 60;
  const panelH = 260;
  const top = 80;
  const width = Math.max(820, left + metrics.length * groupW + 20); // room for the title with few metrics
  const height = top + threadsList.length * (panelH + 70) + 10;
  const cap = 3;
  const rects = []; // for the fallback PNG: [x, y, w, h, color]
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="11">`);
  o.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  rects.push([0, 0, width, height, '#ffffff']);
  o.push(`<text x="${left}" y="20" font-size="15" font-weight="bold">Ratio to HAProxy measured in the same round (median over rounds; dashed line = HAProxy)</text>`);
  o.push(`<text x="${left}" y="36" fill="#555">bulk and CPU/GB: relative to HAProxy + splice-auto; h-* (HTTP): to HAProxy mode http; h2-*, grpc: to HAProxy proto h2; udp-*: to nginx stream udp; the rest: to HAProxy tcp. Bars above 3× are cut, their label starts with &gt;.</text>`);
  // legend
  let lx = left;
  for (const p of shown) {
    o.push(`<rect x="${lx}" y="46" width="12" height="12" fill="${COLORS[p.name] ?? '#555'}"/>`);
    rects.push([lx, 46, 12, 12, COLORS[p.name] ?? '#555555']);
    o.push(`<text x="${lx + 16}" y="56">${esc(p.label)}</text>`);
    lx += 24 + p.label.length * 6.5;
  }
  threadsList.forEach((threads, ti) => {
    const y0 = top + ti * (panelH + 70) + 20;
    const yOf = (r) => y0 + panelH - (Math.min(r, cap) / cap) * panelH;
    o.push(`<text x="${left}" y="${y0 - 6}" font-size="13" font-weight="bold">${threads} worker thread${threads > 1 ? 's' : ''}</text>`);
    for (const g of [0, 0.5, 1, 1.5, 2, 2.5, 3]) {
      const y = yOf(g);
      o.push(`<line x1="${left}" x2="${width - 10}" y1="${y}" y2="${y}" stroke="${g === 1 ? '#000' : '#ddd'}" stroke-width="${g === 1 ? 1.5 : 1}"${g === 1 ? ' stroke-dasharray="6,3"' : ''}/>`);
      o.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${g.toFixed(1)}×</text>`);
      rects.push([left, Math.round(y), width - 10 - left, g === 1 ? 2 : 1, g === 1 ? '#000000' : '#dddddd']);
    }
    metrics.forEach((m, mi) => {
      const gx = left + mi * groupW + 13;
      const bars = barsOf(m);
      bars.forEach((p, pi) => {
        const v = summary[threads][p.name]?.metrics?.[m.key]?.ratio;
        if (v == null) return;
        const x = gx + pi * barW;
        const y = yOf(v);
        const h = y0 + panelH - y;
        const color = COLORS[p.name] ?? '#555555';
        o.push(`<rect x="${x}" y="${y.toFixed(1)}" width="${barW - 2}" height="${h.toFixed(1)}" fill="${color}"><title>${esc(p.label)} ${esc(m.head)}: ${v.toFixed(2)}×</title></rect>`);
        rects.push([x, Math.round(y), barW - 2, Math.round(h), color]);
        o.push(`<text x="${x + (barW - 2) / 2}" y="${(y - 3).toFixed(1)}" font-size="8" text-anchor="middle" transform="rotate(-90 ${x + (barW - 2) / 2} ${(y - 3).toFixed(1)})" dx="12" dy="3">${v > cap ? '>' : ''}${v.toFixed(2)}</text>`);
      });
      o.push(`<text x="${gx + (bars.length * barW) / 2}" y="${y0 + panelH + 16}" text-anchor="middle">${esc(m.short)}</text>`);
      o.push(`<text x="${gx + (bars.length * barW) / 2}" y="${y0 + panelH + 30}" text-anchor="middle" fill="#555">${m.better === 'higher' ? '↑ better' : '↓ better'}</text>`);
    });
  });
  o.push('</svg>');
  return { svg: o.join('\n'), rects, width, height };
}

/** A PNG of the bars only (no text), for machines without rsvg-convert. */
export function rectsToPng({ rects, width, height }) {
  const px = Buffer.alloc(width * height * 3, 255);
  for (const [x, y, w, h, color] of rects) {
    const c = parseInt(color.slice(1), 16);
    const rgb = [(c >> 16) & 255, (c >> 8) & 255, c & 255];
    for (let yy = Math.max(0, y); yy < Math.min(height, y + h); yy++)
      for (let xx = Math.max(0, x); xx < Math.min(width, x + w); xx++) px.set(rgb, (yy * width + xx) * 3);
  }
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) px.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Write latest.svg and latest.png (rsvg-convert when present, else the bars-only encoder). */
export function writeChart(c, svgPath, pngPath) {
  fs.writeFileSync(svgPath, c.svg);
  try {
    execFileSync('rsvg-convert', ['--background-color', 'white', '-o', pngPath, svgPath], { stdio: 'pipe' });
    return 'rsvg-convert';
  } catch {
    fs.writeFileSync(pngPath, rectsToPng(c));
    return 'built-in encoder (bars only, no text: install librsvg2-bin for labels)';
  }
}
