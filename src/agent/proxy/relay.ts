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
      side.pipe(other, { end: false });
      // What `side` sent before its end reaches `other` first: through pipe() in user space, and
      // through the kernel when spliced (drained() waits for it).
      let flushed: Promise<unknown> | undefined;
      side.once('end', () => {
        flushed = splice ? splice.drained(side) : Promise.resolve();
        void flushed.then(() => {
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
