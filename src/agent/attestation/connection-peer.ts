// The caller of a connection, identified once when the connection is accepted and kept for every
// request on it (an HTTP/2 connection carries many streams). Unix-socket peers come from the
// kernel (SO_PEERCRED); loopback TCP peers from the socket tables (tcp-peer.ts).
import type { Socket } from 'node:net';
import type { CallerProcess } from './caller.ts';
import { peerCredentials, peerPidfd, socketFd } from './peer-credentials.ts';
import { pinProcess, releasePin, type ProcessPin } from './process-pin.ts';

export type ConnectionPeer =
  | {
      readonly ok: true;
      readonly transport: 'unix' | 'tcp';
      readonly caller: CallerProcess;
      readonly pin: ProcessPin;
      /**
       * TCP peers: the client's socket in the pinned process — the descriptor number it was
       * found under and the socket's inode (the proxy's kernel relay takes it, client-socket.ts).
       */
      readonly socket?: { readonly fd: number; readonly inode: string };
    }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads SO_PEERCRED (+ SO_PEERPIDFD) and pins the process. Done at accept time, not at the first
 * request, so the window for PID reuse starts as early as possible. Never throws: a connection
 * we cannot identify still gets answers, all of them "Unavailable".
 */
export function identifyUnixPeer(socket: Socket): ConnectionPeer {
  try {
    const fd = socketFd(socket);
    const { pid, uid, gid } = peerCredentials(fd);
    const pin = pinProcess(pid, peerPidfd(fd));
    return { ok: true, transport: 'unix', caller: { pid, uid, gid }, pin };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

export function releaseConnection(peer: ConnectionPeer): void {
  if (peer.ok) releasePin(peer.pin);
}
