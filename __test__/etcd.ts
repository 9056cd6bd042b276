/**
 * A real etcd (Debian `etcd-server`, v3 API) for a test: its own data directory and ports on
 * loopback, started as a tracked child process (`stopAll()` kills it), killable and restartable
 * on the same data to play an outage. The test writes keys with the npm `etcd3` client.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { track } from './processes.js';
import { waitFor } from './helpers.js';

/** Whether the etcd binary is installed (`.ci/run` installs it; a developer may lack it). */
export const HAS_ETCD = spawnSync('etcd', ['--version']).status === 0;

/** A free TCP port on `host` (bound, then released: etcd binds it right after). */
async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** One etcd member. */
export interface EtcdServer {
  /** Client URL, e.g. `http://127.0.0.1:40123`. */
  endpoint: string;
  client: Etcd3;
  /** SIGKILL it (an outage); `start()` brings it back on the same data and ports. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Kill it, close the client and remove its data. */
  destroy(): Promise<void>;
}

/** Start a single-member etcd listening for clients on `host` (default loopback). */
export async function startEtcd(host = '127.0.0.1'): Promise<EtcdServer> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-etcd-'));
  const [clientPort, peerPort] = [await freePort(host), await freePort('127.0.0.1')];
  const endpoint = `http://${host}:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const client = new Etcd3({ hosts: endpoint, dialTimeout: 2_000 });
  const start = async () => {
    child = spawn(
      'etcd',
      [
        '--name', 'n1', '--data-dir', dir,
        '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `n1=${peer}`, '--initial-cluster-state', 'new',
        '--logger', 'zap', '--log-level', 'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    exited = track(child);
    let gone = false;
    void exited.then(() => (gone = true));
    await waitFor(async () => {
      if (gone) throw new Error(`etcd exited at start: ${err}`);
      return client.get('/health-probe').then(() => true, () => false);
    }, `etcd on ${endpoint}`);
  };
  const kill = async () => {
    child?.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    endpoint,
    client,
    kill,
    start,
    async destroy() {
      await kill();
      client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
