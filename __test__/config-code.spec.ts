/**
 * Policy as code through the CLI: a `switchyard.config.ts` exports its configuration (with a
 * policy rule that asks a hook), the hook function and a control loop; `switchyard start`
 * runs all three, as a newcomer would without writing a program. A bad export exits 2 naming it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, listenerPort, startBalancer } from './balancer-process.js';
import { curl1, echoed, httpPeer, type HttpPeer } from './fixtures/http-peers.js';
import { stopAll } from './processes.js';

let dir = '';
let peers: HttpPeer[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-code-'));
});
afterEach(async () => {
  await stopAll();
  await Promise.all(peers.map((p) => p.close()));
  peers = [];
  await rm(dir, { recursive: true, force: true });
});

const module = (main: string, gold: string, hooks: string) => `
interface Req { headers: Record<string, string> }
export default {
  workers: 1,
  listeners: { web: { address: '127.0.0.1:0', protocol: 'http', pool: 'main' } },
  pools: { main: { backends: [{ address: '${main}' }] }, gold: { backends: [{ address: '${gold}' }] } },
  policy: {
    rules: {
      web: [{ name: 'tenants', match: { header: { 'x-tenant': true } }, hook: { name: 'tenant', budget: '500ms', fallback: { pool: 'main' } } }],
    },
  },
};
${hooks}
export const policies = [{ name: 'noop', intervalMs: 60_000, tick() {} }];
`;

describe('a TypeScript config module with hooks and policies', () => {
  it('switchyard start runs the exported hook and control loop', async () => {
    const [main, gold] = await Promise.all([httpPeer('main'), httpPeer('gold')]);
    peers = [main!, gold!];
    const file = join(dir, 'switchyard.config.ts');
    await writeFile(file, module(main!.address, gold!.address, `export const hooks = { tenant: (req: Req) => (req.headers['x-tenant'] === 'gold' ? { pool: 'gold' } : {}) };`));
    const b = startBalancer(['-c', file]);
    const code = await b.logged('config.code');
    expect([code.hooks, code.policies]).toEqual([['tenant'], ['noop']]);
    const base = `http://127.0.0.1:${await listenerPort(b, 'web')}`;
    expect(echoed(await curl1(['-H', 'x-tenant: gold'], `${base}/`)).id).toBe('gold');
    expect(echoed(await curl1(['-H', 'x-tenant: basic'], `${base}/`)).id).toBe('main');
    expect(echoed(await curl1([], `${base}/`)).id).toBe('main');
    expect(gold!.requests).toBe(1);
  });

  it('an export of the wrong kind exits 2 naming it', async () => {
    const file = join(dir, 'switchyard.config.ts');
    await writeFile(file, module('127.0.0.1:1', '127.0.0.1:2', 'export const hooks = { tenant: 42 };'));
    const r = await cli(['start', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.stderr + r.stdout).toContain('hooks.tenant: expected a function, got number');
  });
});
