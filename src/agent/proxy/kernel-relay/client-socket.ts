// The workload's own end of a proxied connection, for the send side of the kernel relay
// (sockmap.ts): with it in the `senders` map, what the client sends goes from its send(2) straight
// into the upstream socket — no loopback crossing to the agent, no work-queue hop.
//
// Taken with pidfd_getfd(2) from the process the connection was attested to (the pinned pidfd
// and the descriptor number the /proc walk found it under, agent/attestation/tcp-peer.ts): the
// kernel checks that we may trace that process (root may, unless a security module says no). A
// duplicate of the descriptor comes back; it is checked to be the socket the attestation found
// (its inode), used to put the socket into the maps and closed at once — the maps hold the
// socket itself, and the kernel takes it out of them when the client closes it. Nothing is
// written to, read from or changed in the workload's socket beyond that membership: while it is
// a member its send(2) runs the send program, which passes every byte on either to the upstream
// (spliced) or, when the upstream has gone, the normal way to the agent.
import { fstatSync } from 'node:fs';
import { type Libc, loadLibc } from '../../bpf/libc.ts';
import { SEND_KEY_BYTES } from './programs.ts';

/** pidfd_getfd(2): the same number on every Linux architecture (the unified syscall table). */
const SYS_PIDFD_GETFD = 438;
const AF_INET = 2;
const AF_INET6 = 10;

/** Where the client's socket is: its process (pidfd) and the descriptor number it holds it under. */
export interface ClientSocketRef {
  readonly pidfd: number;
  readonly fd: number;
  /** The socket's inode, as the attestation found it. */
  readonly inode: string;
}

/** A duplicate of the client's socket (close it after use) and its key in `sendTargets`. */
export interface TakenSocket {
  readonly fd: number;
  readonly key: Buffer;
}

/** The client's socket, or why not (no pidfd_getfd, not permitted, closed or replaced meanwhile). */
export function takeClientSocket(
  ref: ClientSocketRef,
  c: Libc = loadLibc(),
): TakenSocket | { reason: string } {
  const fd = Number(c.syscall(SYS_PIDFD_GETFD, 'int', ref.pidfd, 'int', ref.fd, 'unsigned int', 0));
  if (fd < 0) return { reason: `pidfd_getfd: errno ${c.koffi.errno()}` };
  try {
    if (String(fstatSync(fd).ino) !== ref.inode) {
      throw new Error('the descriptor now holds another file');
    }
    return { fd, key: sendKey(fd, c) };
  } catch (e) {
    c.close(fd);
    return { reason: (e as Error).message };
  }
}

/**
 * The socket's local address as the send program reads it from struct sk_msg_md: family (u32),
 * local port (u32, host order), then the address's bytes (IPv4 in the first 4 of 16).
 */
export function sendKey(fd: number, c: Libc = loadLibc()): Buffer {
  const addr = Buffer.alloc(128);
  const len = [addr.length];
  if (c.getsockname(fd, addr, len) !== 0) {
    throw new Error(`getsockname: errno ${c.koffi.errno()}`);
  }
  const family = addr.readUInt16LE(0);
  const key = Buffer.alloc(SEND_KEY_BYTES);
  key.writeUInt32LE(family, 0);
  key.writeUInt32LE(addr.readUInt16BE(2), 4);
  if (family === AF_INET) addr.copy(key, 8, 4, 8);
  else if (family === AF_INET6) addr.copy(key, 8, 8, 24);
  else throw new Error(`not an IP socket (family ${family})`);
  return key;
}
