/**
 * `iperf3 -u` through Switchyard: iperf3 runs its control connection over TCP and its data over
 * UDP on the same port, so the balancer has a tcp and a udp listener on one port (allowed: ports
 * are per transport), both to one iperf3 server. The client's datagrams form one flow; the
 * server's report (over the control connection) says how many arrived.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { refusedPort, waitFor } from './helpers.js';
import { Switchyard } from '../ts/index.js';

const HAS_IPERF = spawnSync('iperf3', ['--version']).status === 0;

const started: { lbs: Switchyard[]; procs: ChildProcess[] } = { lbs: [], procs: [] };
afterEach(async () => {
  for (const p of started.procs.splice(0)) p.kill('SIGKILL');
  await Promise.all(started.lbs.splice(0).map((lb) => lb.close({ drainMs: 0 })));
});

/** Run a command to its end; stdout, or a rejection with what it printed. */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.procs.push(p);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d));
    p.stderr!.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err || out}`))));
  });
}

describe.skipIf(!HAS_IPERF)('iperf3 -u through a udp listener', () => {
  it('carries a UDP stream with no loss beside its TCP control connection on the same port', async () => {
    const serverPort = await refusedPort();
    const server = spawn('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(serverPort), '-1'], { stdio: 'ignore' });
    started.procs.push(server);
    const port = await refusedPort();
    const backend = { backends: [{ address: `127.0.0.1:${serverPort}` }] };
    const lb = await Switchyard.start({
      workers: 1,
      listeners: {
        control: { address: `127.0.0.1:${port}`, pool: 'control' },
        data: { address: `127.0.0.1:${port}`, protocol: 'udp', pool: 'data' },
      },
      pools: { control: backend, data: backend },
    });
    started.lbs.push(lb);
    // The server is up once its control port accepts (iperf3 prints nothing we could wait on).
    const report = await waitFor(
      () => run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-u', '-b', '20M', '-l', '1200', '-t', '2', '-J']).catch(() => null),
      'an iperf3 run through the balancer',
    );
    const sum = (JSON.parse(report) as { end: { sum: { packets: number; lost_packets: number; bytes: number } } }).end.sum;
    console.log(`iperf3 -u through Switchyard: ${sum.packets} packets, ${sum.lost_packets} lost, ${sum.bytes} bytes`);
    expect(sum.packets).toBeGreaterThan(1000);
    // Loopback at 20 Mbit/s on a loaded box: allow a datagram in a thousand.
    expect(sum.lost_packets / sum.packets).toBeLessThanOrEqual(0.001);
    const udp = lb.stats().listeners.find((l) => l.name === 'data')!.udp!;
    expect(udp.datagrams_in).toBeGreaterThanOrEqual(sum.packets);
    expect(udp.dropped_no_backend + udp.dropped_max_flows + udp.dropped_oversized).toBe(0);
  });
});
