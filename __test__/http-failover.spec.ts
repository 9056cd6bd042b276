/**
 * HTTP listeners when backends fail, with real peers: sticky sessions across a backend
 * killed and brought back (child processes, SIGKILL), a backend killed during a stream of
 * curl requests (retries, connect errors), passive ejection on 5xx, and a slowloris client.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Switchyard } from '../ts/index.js';
import type { BackendEvent, SwitchyardConfig } from '../ts/index.js';
import { curl, curl1, echoed, httpPeer, spawnHttpPeer, stoppedAfterEach, type CurlResponse } from './fixtures/http-peers.js';
import { closedByPeer, connect, waitFor } from './helpers.js';

const SECRET = 'failover-spec-sticky-secret';

/** What a test started (stopped after it whatever happened) and its temporary directory. */
const t = stoppedAfterEach();

async function start(config: SwitchyardConfig): Promise<{ lb: Switchyard; base: string }> {
  const lb = await Switchyard.start(config);
  t.lbs.push(lb);
  return { lb, base: `http://127.0.0.1:${lb.address('front').port}` };
}

/** One HTTP listener `front` whose default route is pool `main`. */
function oneRoute(main: SwitchyardConfig['pools'][string], http?: { header_read_timeout: '1s' }): SwitchyardConfig {
  return { workers: 2, listeners: { front: { address: '127.0.0.1:0', protocol: 'http', pool: 'main', ...(http ? { http } : {}) } }, pools: { main } };
}

const ids = (rs: CurlResponse[]) => rs.map((r) => echoed(r).id);
const statuses = (rs: CurlResponse[]) => rs.map((r) => r.status);
const urls = (base: string, n: number) => Array.from({ length: n }, (_, i) => `${base}/api/${i}`);

describe('HTTP listeners: sticky sessions across a backend going down and up', () => {
  it('stays pinned, re-pins on the other backend when its own dies (no failed request), and stays re-pinned when it returns', async () => {
    const backends = await Promise.all([spawnHttpPeer('s1'), spawnHttpPeer('s2')]);
    const { lb, base } = await start(
      oneRoute({ algorithm: 'least_connections', sticky: { cookie: 'SY_STICKY', secret: SECRET }, backends: backends.map((b) => ({ address: b.address })) }),
    );
    const jar = join(t.dir, 'cookies.txt');
    const withJar = ['-c', jar, '-b', jar];
    const cookieIn = async () => /SY_STICKY\t([0-9a-f]{16})/.exec(await readFile(jar, 'utf8'))?.[1];

    // 20 requests with a cookie jar: the first is pinned, the other 19 follow the cookie.
    const first = await curl(withJar, ...urls(base, 20));
    expect(statuses(first)).toEqual(first.map(() => 200));
    const pinned = echoed(first[0]!).id;
    expect(ids(first)).toEqual(first.map(() => pinned));
    expect(first[0]!.headers['set-cookie']).toHaveLength(1);
    expect(first.slice(1).filter((r) => r.headers['set-cookie'])).toEqual([]);
    const oldCookie = (await cookieIn())!;
    expect(oldCookie).toMatch(/^[0-9a-f]{16}$/);

    const [gone, other] = pinned === 's1' ? [backends[0]!, backends[1]!] : [backends[1]!, backends[0]!];
    await gone.kill();
    // Every request still succeeds, on the other backend; the first re-pins the client.
    const after = await curl(withJar, ...urls(base, 20));
    expect(statuses(after)).toEqual(after.map(() => 200));
    expect(ids(after)).toEqual(after.map(() => other.id));
    expect(after[0]!.headers['set-cookie']?.[0]).toMatch(/^SY_STICKY=[0-9a-f]{16};/);
    expect(after.slice(1).filter((r) => r.headers['set-cookie'])).toEqual([]);
    const newCookie = (await cookieIn())!;
    expect(newCookie).not.toBe(oldCookie);
    expect(lb.stats().pools[0]!.backends.find((b) => b.address === gone.address)!.connect_errors).toBeGreaterThanOrEqual(1);

    // The backend comes back on its address: a client still holding the old cookie reaches it
    // again (the cookie stays valid), while the re-pinned client stays where it was re-pinned.
    await spawnHttpPeer(gone.id, gone.port);
    const back = await waitFor(async () => {
      const r = await curl1(['-b', `SY_STICKY=${oldCookie}`], `${base}/api/old`);
      return echoed(r).id === gone.id ? r : undefined;
    }, 'the old cookie to reach the revived backend');
    expect(back.headers['set-cookie']).toBeUndefined();
    const later = await curl(withJar, ...urls(base, 20));
    expect(statuses(later)).toEqual(later.map(() => 200));
    expect(ids(later)).toEqual(later.map(() => other.id));
    expect(later.filter((r) => r.headers['set-cookie'])).toEqual([]);
    expect(await cookieIn()).toBe(newCookie);
  });
});

describe('HTTP listeners: failing backends', () => {
  it('a backend killed during a stream of GETs costs no request: connects to it fail, are counted, and the requests go to the other', async () => {
    const [keep, doomed] = await Promise.all([spawnHttpPeer('keep'), spawnHttpPeer('doomed')]);
    const { lb, base } = await start(oneRoute({ backends: [{ address: keep.address }, { address: doomed.address }] }));
    const doomedStats = () => lb.stats().pools[0]!.backends.find((b) => b.address === doomed.address)!;
    // About 4 s of requests, paced by curl, on one keep-alive client connection.
    let curlDone = false;
    const stream = curl(['--rate', '200/s'], ...urls(base, 800)).finally(() => (curlDone = true));
    await waitFor(() => doomedStats().total >= 50, 'the doomed backend to serve 50 requests');
    await doomed.kill();
    expect(curlDone).toBe(false); // the kill happened mid-stream
    const responses = await stream;
    expect(responses).toHaveLength(800);
    expect(statuses(responses).filter((s) => s !== 200)).toEqual([]);
    const served = ids(responses);
    // Both served before the kill (the 50 counted include any request in flight at the kill,
    // which `keep` then answered); only `keep` at the end.
    expect(served.filter((id) => id === 'doomed').length).toBeGreaterThanOrEqual(45);
    expect(served.slice(-100)).toEqual(served.slice(-100).map(() => 'keep'));
    expect(doomedStats().connect_errors).toBeGreaterThanOrEqual(1);
    expect(lb.stats().listeners[0]!.routes[0]!.retries).toBeGreaterThanOrEqual(1);
  });

  it('consecutive_5xx: 3 ejects a backend answering 500 (stats and an ejected event), which then receives nothing', async () => {
    const good = await httpPeer('good');
    const bad = await httpPeer('bad', (req, res) => {
      req.resume();
      res.statusCode = 500;
      res.end('broken\n');
    });
    t.peers.push(good, bad);
    const events: BackendEvent[] = [];
    const { lb, base } = await start(
      oneRoute({ passive: { consecutive_5xx: 3, ejection_time: '60s' }, backends: [{ address: good.address }, { address: bad.address }] }),
    );
    lb.on('backend', (e) => events.push(e));
    const badStats = () => lb.stats().pools[0]!.backends.find((b) => b.address === bad.address)!;
    // Round robin: every other request reaches `bad` until its third 500 ejects it. A GET that
    // got a 500 is the backend's answer, not retried.
    const first = await curl([], ...urls(base, 12));
    expect(statuses(first).filter((s) => s === 500)).toHaveLength(3);
    expect(bad.requests).toBe(3);
    expect(badStats()).toMatchObject({ ejected: true, responses_5xx: 3 });
    await waitFor(() => events.find((e) => e.kind === 'ejected' && e.address === bad.address), 'an ejected event');
    const after = await curl([], ...urls(base, 20));
    expect(statuses(after)).toEqual(after.map(() => 200));
    expect(bad.requests).toBe(3);
    expect(good.requests).toBe(9 + 20);
  });
});

/** Send a request head one byte per 200 ms until the listener closes the connection; how long that took and what came back. */
async function slowloris(port: number): Promise<{ ms: number; received: string }> {
  const s = await connect(port);
  let received = '';
  s.on('data', (d: Buffer) => (received += d.toString('latin1')));
  const head = `GET / HTTP/1.1\r\nHost: slow.example\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`;
  let i = 0;
  const began = Date.now();
  // The client's own pace (not synchronisation): one byte every 200 ms.
  const drip = setInterval(() => {
    if (i < head.length && s.writable) s.write(head[i++]!);
  }, 200);
  try {
    await closedByPeer(s);
    return { ms: Date.now() - began, received };
  } finally {
    clearInterval(drip);
    s.destroy();
  }
}

describe('HTTP listeners: slowloris', () => {
  it('a client dripping its request head is disconnected after header_read_timeout while curl is served', async () => {
    const b = await httpPeer('fast');
    t.peers.push(b);
    const { base, lb } = await start(oneRoute({ backends: [{ address: b.address }] }, { header_read_timeout: '1s' }));
    const slow = slowloris(lb.address('front').port);
    const r = await curl1([], `${base}/`);
    expect([r.status, echoed(r).id]).toEqual([200, 'fast']);
    const { ms } = await slow;
    expect(ms).toBeGreaterThanOrEqual(900); // not before the timeout
    expect(ms).toBeLessThan(5_000);
    expect(b.requests).toBe(1); // the partial request never reached the backend
  });

  // hyper only closes a connection whose head is late; Switchyard answers its own 408 first.
  it('answers the slow client 408 (with Switchyard\'s JSON body) before closing', async () => {
    const b = await httpPeer('fast');
    t.peers.push(b);
    const { lb } = await start(oneRoute({ backends: [{ address: b.address }] }, { header_read_timeout: '1s' }));
    const { received } = await slowloris(lb.address('front').port);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(received).toContain('"code":"request_timeout"');
  });
});
