// Bytes both ways between a client and its upstream until either side is done: a half-close is
// passed on (end), an error or a reset on either side, or the connection's signal, ends both.
// With a kernel splice (kernel-relay/), most bytes never come up here; a side's end is passed on
// only once the kernel has handed the other side every byte that came before it.
import type { Duplex } from 'node:stream';
import type { Splice } from './kernel-relay/kernel-relay.ts';

type Closable = Duplex & { destroy(): void };

export function relay(
  client: Closable,
  upstream: Closable,
  signal: AbortSignal,
  splice?: Splice,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let open = 2;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', finish);
      splice?.release();
      client.destroy();
      upstream.destroy();
      resolve();
    };
    const ended = () => {
      if (--open === 0) finish();
    };
    for (const [side, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      // Resolves once `side` has ended and everything it sent before reached `other`.
      let flushed: Promise<unknown> | undefined;
      const done = forward(side, other, splice);
      side.once('end', () => {
        flushed = done;
        void done.then(() => {
          other.end();
          ended();
        });
      });
      side.once('error', finish);
      // A close after a clean end lets `other` write out what it was given, then ends both;
      // any other close (a reset) ends both at once.
      side.once('close', () => {
        if (flushed === undefined) return finish();
        void flushed.then(() => {
          if (other.writableFinished || other.destroyed) return finish();
          other.once('finish', finish);
          setTimeout(finish, 5_000).unref();
        });
      });
    }
    // Either side may have gone before the relay started (while a login ran, say).
    if (signal.aborted || client.closed || upstream.closed) finish();
    else signal.addEventListener('abort', finish, { once: true });
  });
}

/**
 * Writes what comes up from `side` to `other` (never ending it); resolves once `side` has
 * ended and all of it — with a splice, also all the kernel took from `side` — has been handed
 * to `other`.
 */
export function forward(side: Duplex, other: Duplex, splice?: Splice): Promise<unknown> {
  side.pipe(other, { end: false });
  splice?.quiet(side);
  return new Promise<void>((r) => side.once('end', r)).then(() => splice?.drained(side));
}
