// The deployment examples in deploy/, checked as far as this machine allows: the systemd
// unit with systemd-analyze (verify, offline security) and by running its own command lines
// (validate, start, reload by SIGHUP to the main pid, stop by SIGTERM); the Prometheus rules
// with promtool (check and unit tests); the Grafana dashboard's structure; and every metric
// name the rules and the dashboard query against a real scrape of a running Switchyard with a
// TLS and an HTTP listener carrying traffic. The container image cannot be built here (no engine): its Dockerfile is
// checked for what the docs promise (the command itself as PID 1, unprivileged).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { TestCa, type Leaf } from './certs.js';
import { httpPeer, type HttpPeer } from './fixtures/http-peers.js';
import { connect, drain, echo, send, waitFor, type Peer } from './helpers.js';
import { parseExposition, promqlMetricNames, promtoolCheckMetrics } from './prometheus.js';

const ROOT = join(import.meta.dirname, '..');
const DEPLOY = join(ROOT, 'deploy');
const CLI = join(ROOT, 'dist', 'cli.js');
const UNIT = join(DEPLOY, 'systemd', 'switchyard.service');
/** Where the unit expects the installed command and the config. */
const INSTALLED = '/usr/local/bin/switchyard';
const CONFIG = '/etc/switchyard/switchyard.yaml';

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-deploy-'));
let ca: TestCa;
let leaf: Leaf;
let peers: Peer[] = [];

beforeAll(async () => {
  ca = new TestCa();
  leaf = ca.leaf(['www.example.com'], { file: 'www' });
  peers = await Promise.all([echo(), echo()]);
});

/** Daemons of the running test; each is killed and awaited after it, whether it passed or not. */
const daemons: { child: ChildProcess; exited: Promise<number | null> }[] = [];
afterEach(async () => {
  await Promise.all(
    daemons.splice(0).map((d) => {
      d.child.kill('SIGKILL'); // a no-op when it already exited
      return d.exited;
    }),
  );
});

afterAll(async () => {
  for (const p of peers) await p.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(ca.dir, { recursive: true, force: true });
});

/** `[Section] Key=value` lines of a unit file (repeated keys keep every value). */
function unitDirectives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const i = line.indexOf('=');
    const key = `${section}.${line.slice(0, i)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(i + 1)]);
  }
  return out;
}

/** The installed command as npm -g would link it: an executable that runs dist/cli.js. */
function installedCommand(): string {
  const file = join(dir, 'switchyard');
  // exec: the shell is replaced, so the pid systemd sees ($MAINPID) is the balancer's.
  writeFileSync(file, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}

/**
 * deploy/switchyard.yaml as a test can run it: its certificates replaced by test ones in a
 * tls/ directory beside it (the relative paths stay), every address on loopback port 0, the
 * example backends replaced by local servers (`backends`, default the echo peers), and a TCP
 * check instead of HTTP.
 */
function runnableExampleConfig(backends: string[] = peers.map((p) => p.address)): string {
  const c = parseYaml(readFileSync(join(DEPLOY, 'switchyard.yaml'), 'utf8')) as any;
  const cdir = join(dir, 'etc');
  mkdirSync(join(cdir, 'tls'), { recursive: true });
  const cert = c.listeners.web_tls.tls.certificates[0];
  copyFileSync(leaf.chain, join(cdir, cert.cert));
  copyFileSync(leaf.key, join(cdir, cert.key));
  for (const l of Object.values(c.listeners) as { address: string }[]) l.address = '127.0.0.1:0';
  c.admin.address = '127.0.0.1:0';
  c.pools.app.backends = backends.map((address) => ({ address }));
  c.pools.app.health_check = { type: 'tcp', interval: '200ms', timeout: '150ms' };
  const file = join(cdir, 'switchyard.yaml');
  writeFileSync(file, JSON.stringify(c));
  return file;
}

/** A unit command line with the installed paths pointed at this test's copies, split into argv. */
function commandLine(value: string, command: string, config: string): string[] {
  return value.replaceAll(INSTALLED, command).replaceAll(CONFIG, config).split(/\s+/);
}

/** Start argv as the service manager would and collect its output. */
function daemon(argv: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  daemons.push({ child, exited });
  return { child, out: () => out, exited };
}

/** The fields of the first JSON log line of `event`, once it has been printed. */
async function logged(out: () => string, event: string): Promise<Record<string, any>> {
  const line = await waitFor(() => out().split('\n').find((l) => l.includes(`"${event}"`)), `the ${event} log line`);
  return JSON.parse(line) as Record<string, any>;
}

/** Every alert rule of deploy/prometheus/alerts.yml. */
function alertRules(): { alert: string; expr: string }[] {
  const doc = parseYaml(readFileSync(join(DEPLOY, 'prometheus', 'alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** The dashboard's panels, rows' nested panels included. */
function dashboard(): { panels: any[]; templating: { list: any[] } } & Record<string, any> {
  return JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'switchyard.json'), 'utf8'));
}
function panels(d: { panels: any[] }): any[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL query of the dashboard: panel targets and query variables. */
function dashboardQueries(): string[] {
  const d = dashboard();
  const targets = panels(d).flatMap((p) => (p.targets ?? []).map((t: { expr: string }) => t.expr));
  const variables = d.templating.list.filter((v) => v.type === 'query').map((v) => (typeof v.query === 'string' ? v.query : v.query.query) as string);
  return [...targets, ...variables];
}

describe(`systemd unit${hasSystemdAnalyze ? '' : ' (skipped: systemd-analyze is not installed; Debian package "systemd")'}`, () => {
  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify without a warning and keeps its offline security exposure at 2.5 or below', () => {
    const unit = join(dir, 'switchyard.service');
    writeFileSync(unit, readFileSync(UNIT, 'utf8').replaceAll(INSTALLED, installedCommand()));
    const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(`${verify.stdout}${verify.stderr}`.trim()).toBe('');
    expect(verify.status).toBe(0);
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
    const level = /Overall exposure level for switchyard\.service: ([\d.]+) (\w+)/.exec(security.stdout);
    expect(level, security.stdout.slice(-500)).not.toBeNull();
    expect(Number(level![1])).toBeLessThanOrEqual(2.5);
  });

  it('runs the command itself (no npx/npm) with reload by SIGHUP, a descriptor limit and the bind capability, unprivileged', () => {
    const u = unitDirectives(readFileSync(UNIT, 'utf8'));
    const start = u.get('Service.ExecStart')!;
    expect(start).toHaveLength(1);
    expect(start[0]!.split(/\s+/).slice(0, 2)).toEqual([INSTALLED, 'start']);
    for (const v of [...start, ...(u.get('Service.ExecStartPre') ?? [])]) expect(v).not.toMatch(/\b(npx|npm|node)\b/);
    expect(u.get('Service.ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(Number(u.get('Service.LimitNOFILE')![0])).toBeGreaterThanOrEqual(65536);
    expect(u.get('Service.AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(u.get('Service.CapabilityBoundingSet')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(u.get('Service.User')?.[0]).toMatch(/^(?!root$)\w+$/);
    expect(u.get('Service.NoNewPrivileges')).toEqual(['yes']);
    expect(u.get('Service.ProtectSystem')).toEqual(['strict']);
  });

  it('its command lines work: validate passes, start serves, the reload signal reaches the balancer, SIGTERM drains and exits 0', async () => {
    const u = unitDirectives(readFileSync(UNIT, 'utf8'));
    const command = installedCommand();
    const config = runnableExampleConfig();
    const pre = commandLine(u.get('Service.ExecStartPre')![0]!, command, config);
    const validate = spawnSync(pre[0]!, pre.slice(1), { encoding: 'utf8' });
    expect(validate.stderr).toBe('');
    expect(validate.status).toBe(0);

    const d = daemon(commandLine(u.get('Service.ExecStart')![0]!, command, config));
    // The TCP listener `web` (the order of the listeners' start lines is not fixed).
    const line = await waitFor(() => d.out().split('\n').find((l) => l.includes('"listener.started"') && l.includes('"listener":"web"')), 'the web listener to start');
    const port = Number(String((JSON.parse(line) as { address: string }).address).split(':')[1]);
    const s = await connect(port);
    const got = drain(s);
    await send(s, 1000, { end: true });
    expect((await got).length).toBe(1000);

    // ExecReload: `/bin/kill -HUP $MAINPID`, where MAINPID is the pid systemd started.
    const reload = u.get('Service.ExecReload')![0]!.replace('$MAINPID', String(d.child.pid)).split(/\s+/);
    expect(spawnSync(reload[0]!, reload.slice(1)).status).toBe(0);
    await logged(d.out, 'config.reload');
    expect(d.child.exitCode).toBeNull();

    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });
});

describe('container image', () => {
  const text = readFileSync(join(DEPLOY, 'container', 'Dockerfile'), 'utf8');
  /** Instructions of the final stage (continuation lines joined). */
  const last = text
    .replace(/\\\n/g, ' ')
    .split(/^FROM /m)
    .pop()!
    .split('\n')
    .filter((l) => /^[A-Z]+ /.test(l));
  const instruction = (name: string) => last.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

  it('runs the switchyard command as PID 1 in exec form, unprivileged, with the config from the mounted directory', () => {
    expect(instruction('ENTRYPOINT').map((e) => JSON.parse(e))).toEqual([['switchyard']]);
    const cmd = JSON.parse(instruction('CMD')[0]!) as string[];
    expect(cmd.slice(0, 3)).toEqual(['start', '-c', CONFIG]);
    expect(instruction('USER')).toHaveLength(1);
    expect(instruction('USER')[0]).not.toMatch(/^(root|0)(:|$)/);
    expect(instruction('VOLUME')).toEqual(['/etc/switchyard']);
    // Installs the packed tarball (binary inside), so the run stage needs no Rust toolchain.
    expect(instruction('RUN').join('\n')).toMatch(/npm install --global .*\/pkg\/\*\.tgz/);
    expect(text).not.toMatch(/\bnpx\b/);
  });

  it('its HEALTHCHECK command passes against a running Switchyard and fails once it stopped', async () => {
    const check = JSON.parse(/CMD (\[.*\])$/.exec(instruction('HEALTHCHECK')[0]!)![1]!) as string[];
    expect(check[0]).toBe('node');
    const d = daemon([installedCommand(), 'start', '-c', runnableExampleConfig()]);
    const admin = await logged(d.out, 'admin.started');
    // The image's config has the admin server on 8479; here it is wherever port 0 landed.
    const argv = check.map((a) => a.replace('127.0.0.1:8479', String(admin.address)));
    expect(argv.join(' ')).not.toBe(check.join(' '));
    const run = () => spawnSync(process.execPath, argv.slice(1), { encoding: 'utf8', timeout: 30_000 }).status;
    expect(run()).toBe(0);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(run()).toBe(1);
  });

  it('keeps build outputs and dependencies out of the build context', () => {
    const ignored = readFileSync(join(DEPLOY, 'container', 'Dockerfile.dockerignore'), 'utf8').split('\n');
    for (const p of ['**/node_modules', 'target', 'dist', 'native/*.node', '.git']) expect(ignored).toContain(p);
  });
});

describe('Prometheus rules', () => {
  const promDir = join(DEPLOY, 'prometheus');

  it('pass promtool check rules and check config', () => {
    const rules = spawnSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: promDir, encoding: 'utf8' });
    expect(rules.status, `${rules.stdout}${rules.stderr}`).toBe(0);
    expect(rules.stdout).toContain(`SUCCESS: ${alertRules().length} rules found`);
    const config = spawnSync('promtool', ['check', 'config', 'prometheus.yml'], { cwd: promDir, encoding: 'utf8' });
    expect(config.status, `${config.stdout}${config.stderr}`).toBe(0);
  });

  it('pass their unit tests, and every alert has a test in which it fires', () => {
    const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: promDir, encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
    const tests = parseYaml(readFileSync(join(promDir, 'alerts.test.yml'), 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const firing = new Set(tests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    expect(alertRules().map((r) => r.alert).filter((a) => !firing.has(a))).toEqual([]);
  });
});

describe('Grafana dashboard', () => {
  it('is a dashboard whose panels all query the chosen Prometheus data source with defined variables', () => {
    const d = dashboard();
    expect(d.uid).toBe('switchyard');
    const all = panels(d);
    const ids = all.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const variables = new Set(d.templating.list.map((v) => v.name));
    expect([...variables]).toEqual(expect.arrayContaining(['datasource', 'instance', 'pool']));
    for (const p of all.filter((x) => x.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) {
        expect(t.expr, p.title).toMatch(/\S/);
        for (const [, v] of (t.expr as string).matchAll(/\$\{?(\w+)\}?/g)) expect(v!.startsWith('__') || variables.has(v!), `${p.title}: $${v}`).toBe(true);
      }
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      // No two panels share a grid cell.
      for (const q of all.filter((o) => o !== p)) {
        const overlap = x < q.gridPos.x + q.gridPos.w && q.gridPos.x < x + w && y < q.gridPos.y + q.gridPos.h && q.gridPos.y < y + h;
        expect(overlap, `${p.title} / ${q.title}`).toBe(false);
      }
    }
  });
});

describe('metric names of the rules and the dashboard', () => {
  const http: HttpPeer[] = [];
  afterEach(async () => {
    for (const p of http.splice(0)) await p.close();
  });

  it('are all exported by a running Switchyard (TLS and HTTP listeners, health checks, traffic)', async () => {
    // HTTP backends, so the HTTP listener's requests get real answers (and the TCP listeners'
    // connections still reach a backend).
    const answer = (req: { url?: string; resume(): unknown }, res: { statusCode: number; end(b: string): void }) => {
      req.resume();
      res.statusCode = req.url === '/api/fail' ? 500 : 200;
      res.end('ok');
    };
    http.push(await httpPeer('a', answer), await httpPeer('b', answer));
    const command = installedCommand();
    const d = daemon([command, 'start', '-c', runnableExampleConfig(http.map((p) => p.address))]);
    const admin = await logged(d.out, 'admin.started');
    const listeners = await waitFor(() => {
      const started = d
        .out()
        .split('\n')
        .filter((l) => l.includes('"listener.started"'))
        .map((l) => JSON.parse(l) as { listener: string; address: string });
      return started.length === 3 ? new Map(started.map((l) => [l.listener, Number(l.address.split(':')[1])])) : null;
    }, 'the three listeners to start');
    // A plain connection and a TLS handshake, so every per-backend and TLS series has samples.
    const s = await connect(listeners.get('web')!);
    const got = drain(s);
    await send(s, 100, { end: true });
    await got;
    await new Promise<void>((resolve, reject) => {
      const t = tls.connect({ port: listeners.get('web_tls')!, host: '127.0.0.1', servername: 'www.example.com', ca: [readFileSync(ca.cert)] }, () => {
        t.end();
        resolve();
      });
      t.on('error', reject);
    });
    // HTTP requests on both routes (one 5xx), so route, histogram and keep-alive series move.
    const httpBase = `http://127.0.0.1:${listeners.get('http')!}`;
    for (const path of ['/api/a', '/api/b', '/api/fail', '/', '/x']) {
      const r = await fetch(httpBase + path);
      expect(r.status).toBe(path === '/api/fail' ? 500 : 200);
      await r.arrayBuffer();
    }
    const text = await waitFor(async () => {
      const body = await (await fetch(`http://${admin.address}/metrics`)).text();
      // Check durations appear once the first checks have finished.
      return body.includes('switchyard_backend_check_duration_seconds{') ? body : null;
    }, 'the health checks to report');
    expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
    const exported = new Set(parseExposition(text).map((x) => x.name));
    // `up` is written by Prometheus itself for every scrape target.
    exported.add('up');

    const queried = new Map<string, string>();
    for (const r of alertRules()) for (const n of promqlMetricNames(r.expr)) queried.set(n, `alert ${r.alert}`);
    for (const q of dashboardQueries()) for (const n of promqlMetricNames(q)) queried.set(n, `dashboard: ${q}`);
    // The extraction found the families the examples are about (it is not vacuous).
    expect([...queried.keys()]).toEqual(
      expect.arrayContaining([
        'switchyard_backend_connect_seconds_sum',
        'switchyard_backend_connect_seconds_count',
        'switchyard_certificate_expiry_timestamp_seconds',
        'switchyard_listener_tls_failures_total',
        'switchyard_backend_share_ratio',
        'switchyard_build_info',
        'switchyard_route_responses_total',
        'switchyard_route_request_duration_seconds_bucket',
        'switchyard_backend_connections_reused_total',
        'process_open_fds',
        'process_max_fds',
      ]),
    );
    expect([...queried].filter(([n]) => !exported.has(n)).map(([n, where]) => `${n} (${where})`)).toEqual([]);
    // The traffic is in the scrape: five requests on the HTTP listener's two routes.
    const routed = parseExposition(text).filter((x) => x.name === 'switchyard_route_request_duration_seconds_count' && x.labels.listener === 'http');
    expect(routed.map((x) => [x.labels.route, x.value]).sort()).toEqual([
      ['api', 3],
      ['http.default', 2],
    ]);
  });
});
