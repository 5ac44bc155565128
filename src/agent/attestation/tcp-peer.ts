// Who is on the other end of an accepted loopback TCP connection (the credential API, cloud
// metadata endpoints and proxy are HTTP on 127.0.0.1/::1). TCP has no SO_PEERCRED, so:
//   1. the connection's client socket in the kernel's socket table: the socket whose local end is
//      the client's address and whose remote end is our listening address — asked of the kernel
//      by its exact 4-tuple over NETLINK_SOCK_DIAG (sock-diag.ts), else found in /proc/net/tcp{,6}
//      (proc-net-tcp.ts);
//   2. its inode → the process holding it, by a complete, bounded walk of /proc/<pid>/fd
//      (socket-owner.ts);
//   3. the same pin as a Unix peer (process-pin.ts): a pidfd (pidfd_open) and the start time,
//      then a re-check that the pinned process still holds the socket.
//
// "Unambiguous" means exactly one process (thread group) holds the client socket when we look.
// Refused, never guessed:
//   - a non-loopback connection, a connection missing from the table (closed already), an
//     orphaned socket (inode 0), or a walk that cannot be complete (socket-owner.ts);
//   - several holders, whatever they are: a forked child that inherited the connection — even
//     with the same uid, gid and executable — is refused too. Same credentials do not mean same
//     selectors (the child may have moved cgroup, changed its name, or be about to exec), and the
//     agent cannot tell which holder wrote a given request. A client that forks keeps working by
//     opening its connections after the fork (as HTTP clients do) or with close-on-exec sockets.
// As with Unix sockets, the identity is taken at accept: a holder that later passes the socket on
// delegates its identity deliberately, which no transport can prevent.
//
// Redirected connections (the proxy's transparent way in, iptables nat REDIRECT): the client
// dialled the server workload's address, and the kernel rewrote the destination to our loopback
// listener. The client's own socket still reads (client address:port → dialled address:port), so
// step 1 looks for that row, with the dialled address the kernel's NAT table gave the caller
// (SO_ORIGINAL_DST, proxy/transparent/original-dst.ts — never the client's word). The client's
// address need not be loopback (it is the source address the route to the destination chose),
// but its row must be in this network namespace's table: a connection from anywhere else (another
// namespace, another host) has none and is refused. Steps 2 and 3 are the same.
import type { Socket } from 'node:net';
import { readFileSync, readlinkSync } from 'node:fs';
import type { ConnectionPeer } from './connection-peer.ts';
import { pidfdOpen } from './peer-credentials.ts';
import { checkPin, pinProcess, readProc, releasePin } from './process-pin.ts';
import {
  findRow,
  isLoopback,
  tableEndpoint,
  type TcpEndpoint,
  type TcpSocketRow,
} from './proc-net-tcp.ts';
import { findTcpSocket } from './sock-diag.ts';
import { socketHolders, type SocketOwnerOptions } from './socket-owner.ts';

export interface TcpPeerOptions extends SocketOwnerOptions {
  /**
   * Ask the kernel over NETLINK_SOCK_DIAG first (default true; only with the real /proc, as the
   * netlink answer is the real kernel's). false: the /proc tables only (benches compare both).
   */
  readonly sockDiag?: boolean;
}

/**
 * Identifies and pins the process on the other end. Never throws: failures are `ok: false`.
 * `dialled`: for a REDIRECTed connection, its original destination (what the client's socket is
 * connected to); absent, the connection must be loopback to our own address.
 */
export async function identifyTcpPeer(
  socket: Socket,
  o: TcpPeerOptions = {},
  dialled?: TcpEndpoint,
): Promise<ConnectionPeer> {
  try {
    const client = endpoint(socket.remoteAddress, socket.remotePort, 'remote');
    const ours = endpoint(socket.localAddress, socket.localPort, 'local');
    if (!isLoopback(ours.address) || (dialled === undefined && !isLoopback(client.address))) {
      throw new Error(`not a loopback connection (from ${client.address})`);
    }
    const procRoot = o.procRoot ?? '/proc';
    const row = clientRow(client, dialled ?? ours, procRoot, o.sockDiag !== false);
    if (row.inode === '0') throw new Error('the client socket has no owner (closed already?)');
    const holders = await socketHolders(row.inode, o);
    const holder = holders[0];
    if (holder === undefined) throw new Error('no process holds the client socket');
    if (holders.length > 1) {
      throw new Error(
        `several processes hold the client socket (pids ${holders.map((h) => h.pid).join(', ')})`,
      );
    }
    return pinHolder(holder.pid, holder.fd, row.inode, o.procRoot ?? '/proc');
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

function endpoint(address: string | undefined, port: number | undefined, which: string) {
  if (address === undefined || port === undefined) {
    throw new Error(`the connection has no ${which} address (closed already?)`);
  }
  return { address, port };
}

/**
 * The client's socket (local end `client`, remote end `ours`: the address it connected to).
 *
 * First the kernel's exact lookup (sock-diag.ts): the kernel's connection hash holds each 4-tuple
 * at most once, IPv4 sockets and IPv6 sockets on IPv4-mapped addresses alike, so its one answer
 * is the one socket. When it finds none, the /proc tables decide as before (a connection closed
 * already; a kernel without the TCP diag module, which answers ENOENT to everything; a socket
 * bound to a device, which a lookup without an interface does not match): the same answer, at
 * the old cost, for those rare cases only.
 */
function clientRow(
  client: TcpEndpoint,
  ours: TcpEndpoint,
  procRoot: string,
  sockDiag: boolean,
): TcpSocketRow {
  if (sockDiag && procRoot === '/proc') {
    const a = findTcpSocket(client, ours);
    if (a.kind === 'found') return a.row;
  }
  return tablesRow(client, ours, procRoot);
}

/**
 * The client's row from whichever /proc table holds it: an IPv4 client of a dual-stack listener
 * shows as ::ffff:a.b.c.d to us but sits in the IPv4 table; an IPv6 socket connected to a mapped
 * address sits in tcp6. Exactly one row in both tables together, else refused.
 */
function tablesRow(client: TcpEndpoint, ours: TcpEndpoint, procRoot: string): TcpSocketRow {
  const v4 = (a: string) => /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(a)?.[1];
  const rows: TcpSocketRow[] = [];
  const c4 = v4(client.address);
  const o4 = v4(ours.address);
  if (c4 !== undefined && o4 !== undefined) {
    const r = tryRow(
      `${procRoot}/net/tcp`,
      { address: c4, port: client.port },
      {
        address: o4,
        port: ours.port,
      },
      'tcp',
    );
    if (r) rows.push(r);
  }
  const r6 = tryRow(`${procRoot}/net/tcp6`, client, ours, 'tcp6');
  if (r6) rows.push(r6);
  const row = rows[0];
  if (row === undefined) {
    throw new Error('the connection is not in the socket table (closed already?)');
  }
  if (rows.length > 1) throw new Error('the socket tables are ambiguous');
  return row;
}

function tryRow(
  file: string,
  client: TcpEndpoint,
  ours: TcpEndpoint,
  table: 'tcp' | 'tcp6',
): TcpSocketRow | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return undefined; // no IPv6 in this kernel
    throw e;
  }
  try {
    return findRow(text, tableEndpoint(client, table), tableEndpoint(ours, table));
  } catch (e) {
    if (e instanceof Error && /not in the socket table/.test(e.message)) return undefined;
    throw e;
  }
}

/**
 * Pins the holder, then proves the pinned process (not a successor on a recycled pid) holds the
 * socket: the descriptor still links to it after the pin, and the pin still holds after that.
 */
function pinHolder(pid: number, fd: number, inode: string, procRoot: string): ConnectionPeer {
  const pin = pinProcess(pid, pidfdOpen(pid));
  try {
    if (readlinkSync(`${procRoot}/${pid}/fd/${fd}`) !== `socket:[${inode}]`) {
      throw new Error('the client socket changed hands while it was looked up');
    }
    const { uid, gid } = effectiveIds(readProc(`${procRoot}/${pid}/status`));
    checkPin(pin);
    return { ok: true, transport: 'tcp', caller: { pid, uid, gid }, pin, socket: { fd, inode } };
  } catch (e) {
    releasePin(pin);
    throw e;
  }
}

/** Effective uid and gid: the second value of the Uid: and Gid: lines of /proc/<pid>/status. */
export function effectiveIds(status: string): { uid: number; gid: number } {
  const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1];
  const gid = /^Gid:\s+\d+\s+(\d+)/m.exec(status)?.[1];
  if (uid === undefined || gid === undefined) throw new Error('malformed /proc status');
  return { uid: Number(uid), gid: Number(gid) };
}
