// `switchyard reload`, `switchyard start --watch` and SIGHUP against real balancer processes:
// what a reload reports, what a broken file leaves in force, what an unreachable admin API says,
// and wrk's view of 20 reloads that add and remove a listener and change a pool's backends.
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openapiDocument } from '../ts/admin/openapi.js';
import { validate } from '../ts/admin/schema.js';
import { connect, peer, refusedPort, tagThrough, waitFor } from './helpers.js';
import { spawnBackend, stopAll, type ProcessBackend } from './processes.js';
import { cli, json, listenerPort, runWrk, startBalancer } from './balancer-process.js';

// Every process a test started (balancers, backends, wrk, CLI runs) is killed and awaited after it.
afterEach(stopAll);

/** A fresh directory per test: the watch sees only its own file's directory. */
const newDir = () => mkdtempSync(join(tmpdir(), 'switchyard-reload-'));

const tcpPool = (backends: ProcessBackend[], weights: number[] = []) => ({ backends: backends.map((b, i) => ({ address: b.address, weight: weights[i] ?? 1 })) });

describe('switchyard reload', () => {
  it('asks the running balancer to re-read its file, with the token from token_file, and prints what changed; --json prints the response', async () => {
    const dir = newDir();
    const [a, b] = await Promise.all([spawnBackend('a'), spawnBackend('b')]);
    const extraPort = await refusedPort();
    const adminPort = await refusedPort();
    writeFileSync(join(dir, 'token'), 'reload-test-token-0123456789\n');
    const f = join(dir, 'lb.json');
    const admin = { address: `127.0.0.1:${adminPort}`, token_file: 'token' };
    json(f, { workers: 1, listeners: { front: { address: '127.0.0.1:0', pool: 'main' } }, pools: { main: tcpPool([a]) }, admin });
    const lb = startBalancer(['-c', f]);
    await lb.logged('admin.started');
    const front = await listenerPort(lb, 'front');

    const same = await cli(['reload', '-c', f]);
    expect(same, same.stderr).toMatchObject({ code: 0 });
    expect(same.stdout).toContain(`reloaded ${f} (1 listener(s), 1 pool(s)):\n  no changes\n`);

    // A listener and a pool added, a backend added to the running pool.
    json(f, {
      workers: 1,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' }, extra: { address: `127.0.0.1:${extraPort}`, pool: 'other' } },
      pools: { main: tcpPool([a, b], [1, 2]), other: tcpPool([b]) },
      admin,
    });
    const grown = await cli(['reload', '-c', f]);
    expect(grown, grown.stderr).toMatchObject({ code: 0 });
    expect(grown.stdout).toContain('listeners: + extra\n');
    expect(grown.stdout).toContain('pools: + other, ~ main\n');
    expect(grown.stdout).toContain(`pool main backends: + ${b.address}\n`);
    expect(grown.stdout).toContain(`pool other backends: + ${b.address}\n`);
    expect(await tagThrough(extraPort)).toBe('b');

    // Both removed again, one backend removed and one reweighted: --json is the API's answer.
    json(f, { workers: 1, listeners: { front: { address: '127.0.0.1:0', pool: 'main' } }, pools: { main: tcpPool([b]) }, admin });
    const shrunk = await cli(['reload', '-c', f, '--json']);
    expect(shrunk, shrunk.stderr).toMatchObject({ code: 0 });
    const body = JSON.parse(shrunk.stdout) as { reloaded: boolean; listeners: string[]; changes: unknown };
    expect(body).toMatchObject({ reloaded: true, file: f, listeners: ['front'], pools: ['main'], admin_restart_required: false });
    expect(body.changes).toEqual({
      listeners: { added: [], removed: ['extra'], changed: [] },
      pools: { added: [], removed: ['other'], changed: ['main'] },
      backends: { main: { added: [], removed: [a.address], changed: [b.address] }, other: { added: [], removed: [b.address], changed: [] } },
      settings: [],
    });
    // As documented in the OpenAPI document (`Reload`, `ConfigChanges`).
    expect(validate(body, { $ref: '#/components/schemas/Reload' }, openapiDocument(), 'response')).toEqual([]);
    expect(await tagThrough(front)).toBe('b');
    await expect(connect(extraPort)).rejects.toThrow(/ECONNREFUSED/);

    // The token is read from the file: a wrong one is refused by the balancer (exit 1, said so).
    writeFileSync(join(dir, 'token'), 'not-the-running-token-000000\n');
    const wrong = await cli(['reload', '-c', f]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('401 unauthorized');
  });

  it('a broken file exits 2 with every issue, as validate prints them, a listener that cannot bind exits 1, and the running configuration keeps serving', async () => {
    const dir = newDir();
    const a = await spawnBackend('a');
    const adminPort = await refusedPort();
    const env = { SWITCHYARD_RELOAD_TEST_TOKEN: 'env-token-for-the-reload-test' };
    const admin = { address: `127.0.0.1:${adminPort}`, token_env: 'SWITCHYARD_RELOAD_TEST_TOKEN' };
    const f = join(dir, 'lb.json');
    const good = { workers: 1, listeners: { front: { address: '127.0.0.1:0', pool: 'main' } }, pools: { main: tcpPool([a]) }, admin };
    json(f, good);
    const lb = startBalancer(['-c', f], env);
    await lb.logged('admin.started');
    const front = await listenerPort(lb, 'front');

    // Two issues; the admin section is intact, so the balancer is asked and answers with both.
    json(f, { ...good, listeners: { front: { address: '127.0.0.1:0', pool: 'main', colour: 'red' } }, pools: { main: { backends: [{ address: a.address }, { address: '10.0.0.300:80' }] } } });
    const bad = await cli(['reload', '-c', f], env);
    expect(bad.code, bad.stdout + bad.stderr).toBe(2);
    expect(bad.stderr).toContain('the running configuration stays');
    expect(bad.stderr).toContain('invalid configuration (2 errors)');
    expect(bad.stderr).toMatch(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: listeners\\.front\\.colour: unknown key`));
    expect(bad.stderr).toMatch(/:\d+:\d+: pools\.main\.backends\[1\]\.address: /);
    const badJson = await cli(['reload', '-c', f, '--json'], env);
    expect(badJson.code).toBe(2);
    const err = JSON.parse(badJson.stdout) as { error: { code: string; issues: { path: string }[] } };
    expect(err.error.code).toBe('invalid_config');
    expect(err.error.issues.map((i) => i.path).sort()).toEqual(['listeners.front.colour', 'pools.main.backends[1].address']);

    // Not even JSON: the admin section cannot be read, so the file's own issue is printed.
    writeFileSync(f, '{ "listeners": ');
    const garbled = await cli(['reload', '-c', f], env);
    expect(garbled.code).toBe(2);
    expect(garbled.stderr).toContain('JSON syntax error');

    // Valid, but a new listener's address is taken: the balancer changes nothing and says why.
    const taken = await peer(() => {});
    try {
      json(f, { ...good, listeners: { ...good.listeners, extra: { address: taken.address, pool: 'main' } } });
      const busy = await cli(['reload', '-c', f], env);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain(`409 bind_failed: listeners.extra: cannot bind ${taken.address}`);
      expect(busy.stderr).toContain('nothing changed');
    } finally {
      await taken.close();
    }

    expect(lb.exited()).toBe(false);
    expect(await tagThrough(front)).toBe('a');
  });

  it('exits 1 naming the address when the balancer cannot be reached, and says how to enable admin when the file has none', async () => {
    const dir = newDir();
    const port = await refusedPort();
    const f = join(dir, 'lb.json');
    const base = { listeners: { front: { address: '127.0.0.1:0', pool: 'main' } }, pools: { main: { backends: [{ address: '127.0.0.1:9' }] } } };
    json(f, { ...base, admin: { address: `127.0.0.1:${port}` } });
    const down = await cli(['reload', '-c', f]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach the balancer's admin API at http://127.0.0.1:${port}: connection refused`);
    const downJson = await cli(['reload', '-c', f, '--json']);
    expect(downJson.code).toBe(1);
    expect(JSON.parse(downJson.stdout)).toMatchObject({ error: { code: 'unreachable' } });
    // --admin wins over the file's address.
    const other = await refusedPort();
    const flag = await cli(['reload', '-c', f, '--admin', `http://127.0.0.1:${other}`]);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain(`http://127.0.0.1:${other}`);

    json(f, base);
    const off = await cli(['reload', '-c', f]);
    expect(off.code).toBe(1);
    expect(off.stderr).toContain(`${f} has no admin section`);
    expect(off.stderr).toContain('admin: { address: 127.0.0.1:8479 }');
    expect(off.stderr).toContain('SIGHUP');
  });
});

describe('switchyard start --watch', () => {
  it('reloads an edit and a rename over the file, skips a write that changes nothing, and keeps serving through a broken edit', async () => {
    const dir = newDir();
    const [a, b] = await Promise.all([spawnBackend('a'), spawnBackend('b')]);
    const f = join(dir, 'lb.json');
    const config = (backends: ProcessBackend[]) => ({ workers: 1, listeners: { front: { address: '127.0.0.1:0', pool: 'main' } }, pools: { main: tcpPool(backends) } });
    json(f, config([a]));
    const lb = startBalancer(['-c', f, '--watch', '--log-level', 'debug']);
    await lb.logged('config.watch');
    const front = await listenerPort(lb, 'front');
    expect(await tagThrough(front)).toBe('a');
    const reloads = () => lb.lines().filter((l) => l.event === 'config.reloaded');

    // The same bytes again: looked at, not reloaded.
    json(f, config([a]));
    await lb.logged('config.watch_unchanged');
    expect(lb.lines().filter((l) => l.event === 'config.reload')).toEqual([]);

    // An edit in place.
    json(f, config([b]));
    const first = await lb.logged('config.reloaded');
    expect(first).toMatchObject({ trigger: 'watch', changes: { backends: { main: { added: [b.address], removed: [a.address], changed: [] } } } });
    await waitFor(async () => (await tagThrough(front)) === 'b', 'new connections to reach b');

    // An atomic replace: a new file renamed over the old one (a new inode).
    const tmp = join(dir, '.lb.json.tmp');
    json(tmp, config([a]));
    renameSync(tmp, f);
    await waitFor(() => reloads().length === 2 && reloads()[1], 'the reload after the rename');
    expect(reloads()[1]).toMatchObject({ changes: { backends: { main: { added: [a.address], removed: [b.address] } } } });
    await waitFor(async () => (await tagThrough(front)) === 'a', 'new connections to reach a again');

    // A broken edit: logged with its issue, and the running configuration stays.
    json(f, { ...config([a]), pools: { main: { backends: [{ address: 'nowhere' }] } } });
    const failed = await lb.logged('config.reload_failed');
    expect(failed).toMatchObject({ trigger: 'watch', issues: [expect.objectContaining({ path: 'pools.main.backends[0].address' })] });
    expect(await tagThrough(front)).toBe('a');

    // Fixed again: picked up.
    json(f, config([b]));
    await waitFor(() => reloads().length === 3, 'the reload after the fix');
    await waitFor(async () => (await tagThrough(front)) === 'b', 'new connections to reach b after the fix');
    expect(lb.exited()).toBe(false);
  });
});

describe('reloads under load', () => {
  it('wrk sees zero socket errors and zero non-2xx through an HTTP and a TCP listener during 20 reloads (reload command and SIGHUP)', async () => {
    const dir = newDir();
    const http = await Promise.all(['a', 'b', 'c'].map((id) => spawnBackend(id, 0, 'http-echo-server.mjs')));
    const [a, b, c] = http as [ProcessBackend, ProcessBackend, ProcessBackend];
    const extraPort = await refusedPort();
    const adminPort = await refusedPort();
    // The pool's backends and weights step through these; `extra` comes and goes every reload.
    const variants = [
      [{ address: a.address }, { address: b.address }],
      [{ address: a.address, weight: 5 }, { address: c.address }],
      [{ address: b.address }, { address: c.address, weight: 3 }],
      [{ address: a.address }, { address: b.address, weight: 2 }, { address: c.address }],
    ];
    const config = (k: number) => ({
      workers: 2,
      listeners: {
        web: { address: '127.0.0.1:0', protocol: 'http', pool: 'main' },
        tcp: { address: '127.0.0.1:0', pool: 'main' },
        ...(k % 2 === 1 ? { extra: { address: `127.0.0.1:${extraPort}`, protocol: 'http', pool: 'main' } } : {}),
      },
      pools: { main: { backends: variants[k % variants.length] } },
      admin: { address: `127.0.0.1:${adminPort}` },
    });
    const f = join(dir, 'lb.json');
    json(f, config(0));
    const lb = startBalancer(['-c', f]);
    await lb.logged('admin.started');
    const web = await listenerPort(lb, 'web');
    const tcp = await listenerPort(lb, 'tcp');
    expect((await fetch(`http://127.0.0.1:${web}/`)).status).toBe(200);

    const loads = [runWrk(`http://127.0.0.1:${web}/`), runWrk(`http://127.0.0.1:${tcp}/`)];
    // Load is flowing through both listeners before the first reload.
    const accepted = async () => {
      const r = await fetch(`http://127.0.0.1:${adminPort}/api/listeners`);
      const { listeners } = (await r.json()) as { listeners: { name: string; accepted: number }[] };
      return listeners;
    };
    await waitFor(async () => (await accepted()).every((l) => l.accepted >= 16), 'wrk connected through both listeners');

    for (let k = 1; k <= 20; k++) {
      json(f, config(k));
      if (k % 2 === 1) {
        // Odd: the reload command; it adds `extra`, which then serves.
        const r = await cli(['reload', '-c', f]);
        expect(r, r.stderr).toMatchObject({ code: 0 });
        expect(r.stdout).toContain('listeners: + extra');
        expect((await fetch(`http://127.0.0.1:${extraPort}/`)).status).toBe(200);
      } else {
        // Even: SIGHUP; it removes `extra`.
        lb.child.kill('SIGHUP');
        const done = await waitFor(() => lb.lines().filter((l) => l.event === 'config.reloaded')[k / 2 - 1], `SIGHUP reload ${k / 2}`);
        expect(done).toMatchObject({ trigger: 'signal', changes: { listeners: { removed: ['extra'] } } });
      }
    }
    expect(lb.lines().filter((l) => l.event === 'config.reload_failed')).toEqual([]);
    const results = await Promise.all(loads.map((l) => l.stop()));
    for (const r of results) {
      expect(r.requests, r.text).toBeGreaterThan(100);
      expect(r.errors, r.text).toEqual({ connect: 0, read: 0, write: 0, timeout: 0 });
      expect(r.non2xx, r.text).toBe(0);
    }
    expect(lb.exited()).toBe(false);
  });
});
