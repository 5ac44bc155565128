// The caller of a connection, identified once when the connection is accepted and cached for
// every request on it (an HTTP/2 connection carries many streams; the kernel facts cannot change).
import type { Socket } from 'node:net';
import { createContextKey } from '@connectrpc/connect';
import type { CallerProcess } from './identity-source.ts';
import { peerCredentials, peerPidfd, socketFd } from './peer-credentials.ts';
import { pinProcess, releasePin, type ProcessPin } from './process-pin.ts';

export type ConnectionPeer =
  | { readonly ok: true; readonly caller: CallerProcess; readonly pin: ProcessPin }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads SO_PEERCRED (+ SO_PEERPIDFD) and pins the process. Done at accept time, not at the first
 * request, so the window for PID reuse starts as early as possible. Never throws: a connection
 * we cannot identify still gets answers, all of them "Unavailable".
 */
export function identifyConnection(socket: Socket): ConnectionPeer {
  try {
    const fd = socketFd(socket);
    const { pid, uid, gid } = peerCredentials(fd);
    const pin = pinProcess(pid, peerPidfd(fd));
    return { ok: true, caller: { pid, uid, gid }, pin };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

export function releaseConnection(peer: ConnectionPeer): void {
  if (peer.ok) releasePin(peer.pin);
}

/** Carries the connection's peer from the transport to the handlers. */
export const connectionPeerKey = createContextKey<ConnectionPeer>(
  { ok: false, reason: 'no transport peer on the request' },
  { description: 'workload API connection peer' },
);
