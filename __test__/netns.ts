/**
 * A LAN of network namespaces for fleet tests: a bridge (in its own namespace) that each "host"
 * namespace joins with a veth pair (`eth0` inside), and the test's own namespace joined too (an
 * address on the same subnet), so the test process reaches every host directly. Names are unique
 * per run (`sy<id>...`); `down()` removes every namespace and link it made, and is safe to call
 * twice or after a failed `up()`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Run `ip ARGS...`; rejects with its stderr. */
export async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Why network namespaces cannot be made here (not root, no `ip`, no CAP_SYS_ADMIN), or null when they can. */
export async function netnsUnavailable(): Promise<string | null> {
  const probe = `sy-probe-${process.pid}`;
  try {
    await ip('netns', 'add', probe);
    await ip('netns', 'del', probe);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** One host of the LAN. */
export interface Host {
  /** Namespace name (for `ip netns exec`). */
  ns: string;
  /** Its address on the LAN. */
  ip: string;
}

/** A bridge LAN `10.211.N.0/24` (N from the pid); the test process is `.1`. */
export class Lan {
  readonly id = (process.pid % 46_000).toString(36);
  readonly subnet = `10.211.${process.pid % 250}`;
  readonly #bridge = `sy${this.id}br`;
  readonly #uplink = `v${this.id}h`;
  readonly #made: string[] = [];
  /** The test process's address on the LAN. */
  readonly self = `${this.subnet}.1`;

  /** `.n` of the subnet. */
  addr(n: number): string {
    return `${this.subnet}.${n}`;
  }

  /** The bridge, and the test's own namespace on it. */
  async up(): Promise<void> {
    await this.#ns(this.#bridge);
    await ip('-n', this.#bridge, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', this.#bridge, 'link', 'set', 'br0', 'up');
    await ip('link', 'add', this.#uplink, 'type', 'veth', 'peer', 'name', `${this.#uplink}p`);
    await ip('link', 'set', `${this.#uplink}p`, 'netns', this.#bridge);
    await ip('-n', this.#bridge, 'link', 'set', `${this.#uplink}p`, 'master', 'br0', 'up');
    await ip('addr', 'add', `${this.self}/24`, 'dev', this.#uplink);
    await ip('link', 'set', this.#uplink, 'up');
  }

  /** A host namespace `sy<id><name>` with `eth0` at `.n` on the LAN and its own loopback up. */
  async host(name: string, n: number): Promise<Host> {
    const ns = `sy${this.id}${name}`;
    const veth = `v${this.id}${name}`;
    await this.#ns(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`);
    await ip('link', 'set', `${veth}p`, 'netns', this.#bridge);
    await ip('-n', this.#bridge, 'link', 'set', `${veth}p`, 'master', 'br0', 'up');
    await ip('link', 'set', veth, 'netns', ns);
    await ip('-n', ns, 'link', 'set', veth, 'name', 'eth0');
    await ip('-n', ns, 'addr', 'add', `${this.addr(n)}/24`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    return { ns, ip: this.addr(n) };
  }

  /** The addresses on `host`'s eth0. */
  async addresses(host: Host): Promise<string> {
    return ip('-n', host.ns, '-4', 'addr', 'show', 'dev', 'eth0');
  }

  /** Remove every namespace made (their veth ends go with them, and so do the peers). */
  async down(): Promise<void> {
    for (const ns of this.#made.splice(0).reverse()) await ip('netns', 'del', ns).catch(() => {});
    await ip('link', 'del', this.#uplink).catch(() => {});
  }

  async #ns(name: string): Promise<void> {
    await ip('netns', 'add', name);
    this.#made.push(name);
  }
}
