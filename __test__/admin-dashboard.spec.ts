// The dashboard in a real browser (Debian's chromium driven by playwright-core):
// it shows the pool's backends, and when a backend's process is killed and
// client connections are refused there, the page shows it ejected, live; an HTTP listener's
// routes appear with their status-class counters.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { Switchyard } from '../ts/index.js';
import { startAdmin, type AdminServer } from '../ts/admin/server.js';
import { connect, echo, waitFor, type Peer } from './helpers.js';
import { httpPeer } from './fixtures/http-peers.js';

const TOKEN = 'dashboard-test-token-0123456789';
const ARTIFACTS = join(__dirname, 'artifacts');

/** An echo server in its own process, so it can be killed outright. */
async function childBackend(): Promise<{ proc: ChildProcess; address: string }> {
  const script = `const net = require('net');
const s = net.createServer((c) => { c.on('error', () => {}); c.pipe(c); });
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  // Stopped after the test (and awaited) even if it never reports its port.
  cleanup.push(() => {
    proc.kill('SIGKILL');
    return exited;
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`backend process exited early (${code})`)));
  });
  return { proc, address: `127.0.0.1:${port}` };
}

/** One short echo exchange through the balancer (it may fail over to another backend). */
async function exchange(port: number): Promise<void> {
  const s = await connect(port);
  await new Promise<void>((resolve) => {
    s.once('data', () => resolve());
    s.once('error', () => resolve());
    s.once('close', () => resolve());
    s.write('hi\n');
  });
  s.destroy();
}

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Debian's chromium, headless, closed after the test. */
async function browser(): Promise<Browser> {
  const b = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  cleanup.push(() => b.close());
  return b;
}

describe('dashboard', () => {
  it('shows every backend, and a killed backend going ejected, live', async () => {
    const peers: Peer[] = [await echo(), await echo()];
    cleanup.push(() => Promise.all(peers.map((p) => p.close())));
    const child = await childBackend();
    const lb = await Switchyard.start({
      workers: 2,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: {
        main: {
          connect_timeout: '1s',
          passive: { consecutive_failures: 3, ejection_time: '60s' },
          backends: [{ address: peers[0]!.address }, { address: child.address, weight: 2 }, { address: peers[1]!.address }],
        },
      },
    });
    cleanup.push(() => lb.close({ drainMs: 0 }));
    const admin: AdminServer = await startAdmin(lb, { address: '127.0.0.1:0', token: TOKEN });
    cleanup.push(() => admin.close());
    const port = lb.address('front').port;

    const page = await (await browser()).newPage({ viewport: { width: 1280, height: 800 } });
    const failures: string[] = [];
    page.on('pageerror', (e) => failures.push(String(e)));
    page.on('requestfailed', (r) => {
      if (!r.url().endsWith('/api/stream')) failures.push(`${r.url()} ${r.failure()?.errorText}`);
    });

    // The one-time token link sets the cookie and lands on the page.
    await page.goto(`http://${admin.address.address}/?token=${encodeURIComponent(TOKEN)}`);
    expect(new URL(page.url()).search).toBe('');
    const row = (address: string) => `section[data-pool="main"] tr[data-backend="${address}"]`;
    for (const address of [peers[0]!.address, child.address, peers[1]!.address]) {
      await page.waitForSelector(`${row(address)}[data-status="up"]`, { timeout: 10_000 });
    }
    expect(await page.locator(`${row(child.address)} td`).nth(2).textContent()).toBe('2');
    await expect.poll(() => page.locator('#conn').textContent()).toBe('live');

    // Some traffic, so the charts move.
    for (let i = 0; i < 12; i++) await exchange(port);
    await page.waitForFunction(() => [...document.querySelectorAll('tr[data-backend] td:nth-child(7)')].some((td) => Number(td.textContent) > 0), undefined, { timeout: 10_000 });

    // Kill the backend's process: its connects are refused; after 3 in a row it is ejected.
    child.proc.kill('SIGKILL');
    await new Promise((r) => child.proc.once('exit', r));
    await waitFor(
      async () => {
        await exchange(port);
        return lb.stats().pools[0]!.backends.find((b) => b.address === child.address)!.ejected;
      },
      'the killed backend to be ejected',
      20_000,
    );
    await page.waitForSelector(`${row(child.address)}:is([data-status="ejected"],[data-status="down"])`, { timeout: 10_000 });
    await expect.poll(() => page.locator('#events').textContent(), { timeout: 10_000 }).toContain('ejected');
    expect(await page.locator(row(peers[0]!.address)).getAttribute('data-status')).toBe('up');
    expect(await page.locator(`${row(child.address)} .why`).textContent()).toMatch(/ejected/);
    // A few more seconds of samples for the sparklines, then the artifact.
    for (let i = 0; i < 6; i++) await exchange(port);
    await page.waitForTimeout(1500);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(failures).toEqual([]);
  });

  it('shows an HTTP listener\'s routes with their requests by status class and retries', async () => {
    const backend = await httpPeer('app', (req, res) => {
      req.resume();
      res.statusCode = req.url === '/api/missing' ? 404 : req.url === '/api/boom' ? 500 : 200;
      res.end('x');
    });
    cleanup.push(() => backend.close());
    const lb = await Switchyard.start({
      workers: 1,
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http', routes: [{ name: 'api', match: { path_prefix: '/api/' }, pool: 'app' }], pool: 'app' } },
      pools: { app: { backends: [{ address: backend.address }] } },
    });
    cleanup.push(() => lb.close({ drainMs: 0 }));
    const admin: AdminServer = await startAdmin(lb, { address: '127.0.0.1:0', token: null });
    cleanup.push(() => admin.close());
    const base = `http://127.0.0.1:${lb.address('web').port}`;
    for (const path of ['/api/ok', '/api/ok', '/api/ok', '/api/missing', '/api/boom', '/']) await (await fetch(base + path)).arrayBuffer();

    const page = await (await browser()).newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`http://${admin.address.address}/`);
    const row = (name: string) => `section[data-routes="web"] tr[data-route="${name}"]`;
    await page.waitForSelector(row('api'), { timeout: 10_000 });
    // Cells: route, match, pool, req/s, 2xx, 4xx, 5xx, retries, avg.
    const cells = async (name: string) => (await page.locator(`${row(name)} td`).allTextContents()).map((t) => t.trim());
    // Polled: the page re-renders every second from the stream.
    await expect.poll(async () => (await cells('api')).slice(4, 8), { timeout: 10_000 }).toEqual(['3', '1', '1', '0']);
    const api = await cells('api');
    expect(api.slice(0, 3)).toEqual(['api', 'path_prefix /api/', 'app']);
    expect(api[8]).toMatch(/^\d+\.\d\d ms$/);
    await expect.poll(async () => (await cells('web.default')).slice(4, 8), { timeout: 10_000 }).toEqual(['1', '0', '0', '0']);
    expect((await cells('web.default'))[1]).toBe('every request');
    expect(await page.locator('tr[data-listener="web"] td').nth(2).textContent()).toBe('http');
  });
});
