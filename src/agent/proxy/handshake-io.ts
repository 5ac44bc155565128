// I/O the database protocol handlers share while they stand between client and server before
// relaying: bounded reads of one message, the in-band TLS upgrade of the upstream, and the raw
// two-way relay once both sides are authenticated.
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP, type Socket } from 'node:net';
import { UnavailableError } from '../../core/errors.ts';

/** A stream the handlers read and write (a client socket, an upstream socket or TLS socket). */
export type Stream = Duplex & { destroy(error?: Error): void };

/** Read past a bound, too slow, or the peer went away. `reason` is safe to show and log. */
export class ReadError extends Error {
  readonly reason: 'too-large' | 'timeout' | 'closed' | 'aborted';
  constructor(reason: ReadError['reason'], message: string) {
    super(message);
    this.name = 'ReadError';
    this.reason = reason;
  }
}

/**
 * Reads from `stream` until `parse` finds a whole message at the start of what was read
 * (returning it and the bytes after it), at most `maxBytes` buffered, within `timeoutMs`.
 * `pending` are bytes read earlier. The stream is left paused, without listeners.
 */
export function readUntil<T>(
  stream: Stream,
  pending: Buffer,
  parse: (buf: Buffer) => { value: T; rest: Buffer } | undefined,
  options: { maxBytes: number; timeoutMs: number; signal: AbortSignal; what: string },
): Promise<{ value: T; rest: Buffer }> {
  const first = parse(pending);
  if (first) return Promise.resolve(first);
  return new Promise((resolve, reject) => {
    let buf = pending;
    const cleanup = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onClosed);
      stream.off('close', onClosed);
      stream.off('error', onClosed);
      options.signal.removeEventListener('abort', onAbort);
      stream.pause();
    };
    const fail = (e: ReadError): void => {
      cleanup();
      reject(e);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const got = parse(buf);
      if (got) {
        cleanup();
        resolve(got);
      } else if (buf.length > options.maxBytes) {
        fail(
          new ReadError('too-large', `${options.what} is larger than ${options.maxBytes} bytes`),
        );
      }
    };
    const onClosed = (): void => fail(new ReadError('closed', `closed before ${options.what}`));
    const onAbort = (): void =>
      fail(new ReadError('aborted', `aborted waiting for ${options.what}`));
    const timer = setTimeout(
      () => fail(new ReadError('timeout', `no ${options.what} within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    if (options.signal.aborted) return onAbort();
    options.signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', onData);
    stream.once('end', onClosed);
    stream.once('close', onClosed);
    stream.once('error', onClosed);
    stream.resume();
  });
}

/**
 * TLS over an established upstream connection (after the protocol's own TLS request), with the
 * server workload's verification options. Rejects with UnavailableError naming the TLS failure
 * (e.g. the certificate's verification code), never the credential.
 */
export function startTls(
  socket: Socket,
  options: { servername: string; ca?: string; rejectUnauthorized: true },
  timeoutMs: number,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // An IP address is verified against the certificate's IP SANs but is no SNI name (RFC 6066).
    const { servername, ...rest } = options;
    // readUntil leaves the socket paused; TLS reads through it (same tick: nothing is lost).
    socket.resume();
    const tls = tlsConnect(
      isIP(servername) ? { ...rest, host: servername, socket } : { ...options, socket },
    );
    const timer = setTimeout(() => {
      tls.destroy();
      reject(
        new UnavailableError(`TLS to ${options.servername}: no handshake within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    tls.once('secureConnect', () => {
      clearTimeout(timer);
      tls.off('error', onError);
      resolve(tls);
    });
    const onError = (e: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      tls.destroy();
      reject(new UnavailableError(`TLS to ${options.servername}: ${e.code ?? e.message}`));
    };
    tls.once('error', onError);
  });
}

/** Small request/answer protocols: each write goes out at once (no Nagle delay) on both sides. */
export function noDelay(...streams: Stream[]): void {
  for (const s of streams) {
    if ('setNoDelay' in s && typeof s.setNoDelay === 'function') s.setNoDelay(true);
  }
}
