// What the kernel relay reads of, and does to, Node's own sockets: their byte counters, their
// descriptor when they are plain TCP, and libuv's reading — stopped while the kernel moves a
// socket's bytes (connection-splice.ts, quiet()) and started again. Node's Socket does the same
// with these handle members; nothing here writes to or reads from a socket.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { socketFd } from '../../attestation/peer-credentials.ts';

export interface NodeSocketCounters {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly writableLength: number;
  readonly readableLength: number;
  readonly destroyed: boolean;
  readonly encrypted?: boolean;
}

export const counters = (s: Duplex) => s as unknown as NodeSocketCounters;

/** The part of a Node socket's libuv handle used here. */
interface NodeHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

function handleOf(s: Duplex): NodeHandle | undefined {
  const h = (s as unknown as { _handle?: NodeHandle | null })._handle;
  return h && typeof h.readStop === 'function' ? h : undefined;
}

/** Stops libuv reading the socket (and the stream flowing); false when it has no handle. */
export function stopReading(s: Duplex): boolean {
  const h = handleOf(s);
  if (!h) return false;
  s.pause();
  h.reading = false;
  h.readStop();
  return true;
}

/**
 * Resumes a socket whose reads were stopped (stopReading, or a pause). Node's stream would not
 * ask libuv again by itself: it still counts the read it asked for before as pending.
 */
export function readAgain(s: Duplex): void {
  const h = handleOf(s);
  if (h && !h.reading && !s.destroyed) {
    h.reading = true;
    h.readStart();
  }
  s.resume();
}

/** The fd of a plain (not TLS), open TCP socket, else undefined. */
export function plainTcpFd(s: Duplex): number | undefined {
  const c = counters(s);
  if (c.encrypted === true || c.destroyed) return undefined;
  try {
    return socketFd(s as Socket);
  } catch {
    return undefined;
  }
}
