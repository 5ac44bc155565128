// One TCP socket by its exact 4-tuple, asked of the kernel over NETLINK_SOCK_DIAG: a
// SOCK_DIAG_BY_FAMILY request without NLM_F_DUMP is the kernel's exact lookup
// (inet_diag_find_one_icsk: the same established/time-wait hash lookup an arriving packet takes),
// answered by one inet_diag_msg (uid, inode, state) or NLMSG_ERROR (ENOENT: no such socket).
// A few µs whatever the number of sockets, where reading /proc/net/tcp{,6} costs O(all sockets):
// thousands of TIME_WAIT rows under connection churn (proc-net-tcp.ts stays as the fallback).
//
// Protocol facts (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h): nlmsghdr {u32 len,
// u16 type, u16 flags, u32 seq, u32 pid} in host order; inet_diag_req_v2 {u8 family, u8 protocol,
// u8 ext, u8 pad, u32 states, inet_diag_sockid id}; inet_diag_sockid {be16 sport, be16 dport,
// be32 src[4], be32 dst[4], u32 if, u32 cookie[2]}; inet_diag_msg {u8 family, u8 state, u8 timer,
// u8 retrans, inet_diag_sockid id, u32 expires, rqueue, wqueue, uid, inode}.
//
// Untrusted input, strictly checked: an answer is taken only when its sequence number, type and
// lengths are right (no length beyond what was received) and its 4-tuple is exactly the one asked
// for — the kernel's lookup falls back to a listening socket when no connection matches, which
// is no match here. The IPv4 tuple finds IPv4 sockets and IPv6 sockets connected to
// IPv4-mapped addresses alike (one hash holds both; an IPv4 packet finds either way): the
// answer's family says which.
import { isIPv4 } from 'node:net';
import { endianness } from 'node:os';
import { libcLibrary } from './peer-credentials.ts';
import { addressBytes, type TcpEndpoint, type TcpSocketRow } from './proc-net-tcp.ts';

const AF_NETLINK = 16;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const IPPROTO_TCP = 6;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const INET_DIAG_NOCOOKIE = 0xffffffff;
const ENOENT = 2;
const EINTR = 4;
const EAGAIN = 11;
const NLMSG_HDRLEN = 16;
const REQ_BYTES = 56; // inet_diag_req_v2
const MSG_BYTES = 72; // inet_diag_msg
/** socket(2) failures that will not change: no netlink, no NETLINK_SOCK_DIAG, a sandbox. */
const PERMANENT = new Set([1 /* EPERM */, 13 /* EACCES */, 22 /* EINVAL */, 93, 97]);

/** What the kernel said of one 4-tuple. */
export type SockDiagAnswer =
  | { readonly kind: 'found'; readonly row: TcpSocketRow; readonly family: 4 | 6 }
  /** No socket with exactly this 4-tuple (or the kernel has no TCP diag module: ENOENT too). */
  | { readonly kind: 'absent' }
  /** No netlink lookup here (socket(2) refused): use the /proc tables. */
  | { readonly kind: 'unavailable'; readonly reason: string };

interface Netlink {
  socket(domain: number, type: number, protocol: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  close(fd: number): number;
  errno(): number;
}

let nl: Netlink | undefined;
/** The one netlink socket, opened on first use and kept; -1: not open. */
let fd = -1;
let unavailable: string | undefined;
let seq = 0;
const le = endianness() === 'LE';
const request = Buffer.alloc(NLMSG_HDRLEN + REQ_BYTES);
const answer = Buffer.alloc(8 * 1024);

function bind(): Netlink {
  if (nl) return nl;
  const { koffi, lib } = libcLibrary();
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const send = lib.func('long send(int fd, const void *buf, unsigned long len, int flags)');
  const recv = lib.func('long recv(int fd, _Out_ void *buf, unsigned long len, int flags)');
  const close = lib.func('int close(int fd)');
  nl = {
    socket: (d, t, p) => socket(d, t, p) as number,
    send: (f, b, l, fl) => Number(send(f, b, l, fl)),
    recv: (f, b, l, fl) => Number(recv(f, b, l, fl)),
    close: (f) => close(f) as number,
    errno: () => koffi.errno(),
  };
  return nl;
}

/**
 * The TCP socket whose local end is `local` and remote end is `remote`, in the agent's network
 * namespace. Throws only when the kernel's answer is malformed (refused, never guessed).
 */
export function findTcpSocket(local: TcpEndpoint, remote: TcpEndpoint): SockDiagAnswer {
  if (unavailable !== undefined) return { kind: 'unavailable', reason: unavailable };
  if (process.platform !== 'linux') return { kind: 'unavailable', reason: 'not Linux' };
  const c = bind();
  if (fd < 0) {
    const s = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s < 0) {
      const errno = c.errno();
      const reason = `no NETLINK_SOCK_DIAG socket (errno ${errno})`;
      if (PERMANENT.has(errno)) unavailable = reason;
      return { kind: 'unavailable', reason };
    }
    fd = s;
  }
  const v4 = bothV4(local, remote);
  seq = (seq + 1) >>> 0 || 1;
  const len = writeRequest(request, seq, v4 ? AF_INET : AF_INET6, local, remote);
  try {
    if (retry(() => c.send(fd, request, len, 0)) !== len) {
      throw new Error(`the socket lookup request was not sent (errno ${c.errno()})`);
    }
    // The kernel answers inside send(): the answer is queued by now, so never wait for it.
    for (let reads = 0; reads < 8; reads++) {
      const n = retry(() => c.recv(fd, answer, answer.length, MSG_DONTWAIT | MSG_TRUNC));
      if (n < 0) {
        const errno = c.errno();
        throw new Error(
          errno === EAGAIN
            ? 'the kernel did not answer the socket lookup'
            : `the socket lookup answer could not be read (errno ${errno})`,
        );
      }
      const a = parseAnswer(answer, n, seq, local, remote);
      if (a !== 'stale') return a;
    }
    throw new Error('no answer to the socket lookup among the stale ones');
  } catch (e) {
    // Whatever is left in the socket belongs to no question now: start afresh next time.
    c.close(fd);
    fd = -1;
    throw e;
  }
}

function retry(call: () => number): number {
  let n = call();
  for (let tries = 0; n < 0 && bind().errno() === EINTR && tries < 100; tries++) n = call();
  return n;
}

/** IPv4 (or IPv4-mapped) on both ends: asked in AF_INET, which finds both kinds of socket. */
function bothV4(a: TcpEndpoint, b: TcpEndpoint): boolean {
  return v4Of(a.address) !== undefined && v4Of(b.address) !== undefined;
}

function v4Of(address: string): string | undefined {
  if (isIPv4(address)) return address;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1] !== undefined && isIPv4(m[1]) ? m[1] : undefined;
}

/** The 16 bytes of inet_diag_sockid's src/dst for `family`: IPv4 in the first 4, zeros after. */
function idAddress(address: string, family: number): Buffer {
  if (family === AF_INET6) return addressBytes(address, 16);
  const out = Buffer.alloc(16);
  addressBytes(v4Of(address) ?? address, 4).copy(out, 0);
  return out;
}

/** Writes nlmsghdr + inet_diag_req_v2 into `buf`; returns the message length. */
export function writeRequest(
  buf: Buffer,
  sequence: number,
  family: number,
  local: TcpEndpoint,
  remote: TcpEndpoint,
): number {
  const len = NLMSG_HDRLEN + REQ_BYTES;
  buf.fill(0, 0, len);
  u32(buf, 0, len);
  u16(buf, 4, SOCK_DIAG_BY_FAMILY);
  u16(buf, 6, NLM_F_REQUEST);
  u32(buf, 8, sequence);
  const r = NLMSG_HDRLEN;
  buf[r] = family;
  buf[r + 1] = IPPROTO_TCP;
  u32(buf, r + 4, 0xffffffff); // every state
  buf.writeUInt16BE(local.port, r + 8);
  buf.writeUInt16BE(remote.port, r + 10);
  idAddress(local.address, family).copy(buf, r + 12);
  idAddress(remote.address, family).copy(buf, r + 28);
  u32(buf, r + 48, INET_DIAG_NOCOOKIE);
  u32(buf, r + 52, INET_DIAG_NOCOOKIE);
  return len;
}

/**
 * The answer to request `sequence` in the `n` bytes received: 'stale' when the datagram answers
 * an older request. `n` larger than the buffer means the kernel's datagram was cut (MSG_TRUNC).
 */
export function parseAnswer(
  buf: Buffer,
  n: number,
  sequence: number,
  local: TcpEndpoint,
  remote: TcpEndpoint,
): SockDiagAnswer | 'stale' {
  if (n > buf.length) throw new Error(`the socket lookup answer was cut (${n} bytes)`);
  if (n < NLMSG_HDRLEN) throw new Error(`the socket lookup answer is too short (${n} bytes)`);
  const len = r32(buf, 0);
  const type = r16(buf, 4);
  if (len < NLMSG_HDRLEN || len > n) {
    throw new Error(`the socket lookup answer has a bad length (${len} of ${n} bytes)`);
  }
  if (r32(buf, 8) !== sequence) return 'stale';
  if (type === NLMSG_ERROR) {
    if (len < NLMSG_HDRLEN + 4) throw new Error('the socket lookup error is too short');
    const error = le ? buf.readInt32LE(NLMSG_HDRLEN) : buf.readInt32BE(NLMSG_HDRLEN);
    if (error === -ENOENT) return { kind: 'absent' };
    throw new Error(`the kernel refused the socket lookup (errno ${-error})`);
  }
  if (type !== SOCK_DIAG_BY_FAMILY) {
    throw new Error(`the socket lookup answer has an unexpected type ${type}`);
  }
  if (len < NLMSG_HDRLEN + MSG_BYTES) throw new Error('the socket lookup answer is too short');
  const m = NLMSG_HDRLEN;
  const family = buf[m];
  if (family !== AF_INET && family !== AF_INET6) {
    throw new Error(`the socket lookup answered family ${String(family)}`);
  }
  // Exactly the 4-tuple asked for, in the answer's own family (an IPv6 socket reports mapped
  // addresses): anything else (a listener the lookup fell back to) is no match.
  const exact =
    buf.readUInt16BE(m + 4) === local.port &&
    buf.readUInt16BE(m + 6) === remote.port &&
    sameAddress(buf, m + 8, local.address, family) &&
    sameAddress(buf, m + 24, remote.address, family);
  if (!exact) return { kind: 'absent' };
  return {
    kind: 'found',
    row: { uid: r32(buf, m + 64), inode: String(r32(buf, m + 68)) },
    family: family === AF_INET ? 4 : 6,
  };
}

function sameAddress(buf: Buffer, at: number, address: string, family: number): boolean {
  let expected: Buffer;
  try {
    expected = idAddress(address, family);
  } catch {
    return false; // an IPv6 address answered as an IPv4 socket: not ours
  }
  return buf.compare(expected, 0, 16, at, at + 16) === 0;
}

function u32(b: Buffer, at: number, v: number): void {
  if (le) b.writeUInt32LE(v, at);
  else b.writeUInt32BE(v, at);
}
function u16(b: Buffer, at: number, v: number): void {
  if (le) b.writeUInt16LE(v, at);
  else b.writeUInt16BE(v, at);
}
function r32(b: Buffer, at: number): number {
  return le ? b.readUInt32LE(at) : b.readUInt32BE(at);
}
function r16(b: Buffer, at: number): number {
  return le ? b.readUInt16LE(at) : b.readUInt16BE(at);
}
