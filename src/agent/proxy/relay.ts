// Bytes both ways between a client and its upstream until either side is done: a half-close is
// passed on (end), an error or a reset on either side, or the connection's signal, ends both.
import type { Duplex } from 'node:stream';

type Closable = Duplex & { destroy(): void };

export function relay(client: Closable, upstream: Closable, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    let open = 2;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', stop);
      client.destroy();
      upstream.destroy();
      resolve();
    };
    const stop = () => finish();
    const ended = () => {
      if (--open === 0) finish();
    };
    client.pipe(upstream);
    upstream.pipe(client);
    // Each side's end is passed on by pipe(); both ended: done.
    client.once('end', ended);
    upstream.once('end', ended);
    for (const s of [client, upstream]) {
      s.once('error', stop);
      s.once('close', stop);
    }
    if (signal.aborted) finish();
    else signal.addEventListener('abort', stop, { once: true });
  });
}
