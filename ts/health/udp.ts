/**
 * The `udp` check: one datagram (`udp.send`) from a socket `connect`ed to the backend, and one
 * reply expected (containing `udp.expect`, when given) within the check's timeout. UDP has no
 * handshake, so the reply is the only proof of life; a connected socket also hears the ICMP port
 * unreachable a host sends when nothing listens on the port (Linux reports it as ECONNREFUSED on
 * the socket), which fails the check at once instead of waiting for the timeout. A connected
 * socket only receives datagrams from the backend's address and port, so a stray datagram
 * cannot pass the check.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { describeError, isLocalError, type ErrnoError, type Finish } from './reasons.js';
import type { ResolvedHealthCheck } from './types.js';

/** At most this much of `expect` is shown in a reason. */
const MAX_SHOWN = 40;

/** `bytes` for a reason: as text when printable, else as hex; cut at `MAX_SHOWN`. */
function shown(bytes: Buffer): string {
  const cut = bytes.subarray(0, MAX_SHOWN);
  const more = bytes.length > MAX_SHOWN ? '…' : '';
  const text = cut.toString('latin1');
  return /^[\x20-\x7e]*$/.test(text) ? `${JSON.stringify(text)}${more}` : `hex ${cut.toString('hex')}${more}`;
}

/** Send the check's datagram to `target` and judge the reply; returns the cleanup. */
export function udpCheck(target: { host: string; port: number }, check: ResolvedHealthCheck, finish: Finish): () => void {
  const u = check.udp!;
  const payload = Buffer.from(u.send_hex, 'hex');
  const expect = u.expect_hex === null ? null : Buffer.from(u.expect_hex, 'hex');
  const socket = dgram.createSocket(net.isIPv6(target.host) ? 'udp6' : 'udp4');
  let open = true;
  socket.on('error', (err: ErrnoError) => {
    // The ICMP port unreachable of a backend whose port is closed, reported on the next receive.
    if (err.code === 'ECONNREFUSED') finish(false, 'port unreachable');
    else finish(false, describeError(err, false), isLocalError(err));
  });
  socket.on('message', (msg) => {
    if (expect === null || msg.includes(expect)) finish(true, `reply, ${msg.length} bytes`);
    else finish(false, `reply of ${msg.length} bytes lacks ${shown(expect)}`);
  });
  socket.connect(target.port, target.host, () => {
    socket.send(payload, (err) => {
      if (err) socket.emit('error', err);
    });
  });
  return () => {
    if (!open) return;
    open = false;
    socket.close();
  };
}
