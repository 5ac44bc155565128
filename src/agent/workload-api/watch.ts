// Turns the source's change notifications into a stream of full-state messages: one at once,
// then one per change whose result differs from the last one sent (identical repeats are
// suppressed, as SPIRE does with proto.Equal). Notifications that arrive while a message is
// being written are coalesced into one recomputation, so a slow reader costs memory O(1).
import type { WorkloadIdentitySource } from './identity-source.ts';

/** Yields once at once, then once per (coalesced) change, until `signal` aborts. */
export async function* changeTicks(
  source: Pick<WorkloadIdentitySource, 'onChange'>,
  signal: AbortSignal,
): AsyncGenerator<void> {
  let pending = true;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const off = source.onChange(() => {
    pending = true;
    poke();
  });
  signal.addEventListener('abort', poke);
  try {
    while (!signal.aborted) {
      if (!pending) await new Promise<void>((resolve) => (wake = resolve));
      if (signal.aborted) return;
      pending = false;
      yield;
    }
  } finally {
    off();
    signal.removeEventListener('abort', poke);
  }
}

/**
 * Full-state messages for a stream: `compute` runs at once and after every change (it throws to
 * end the stream, e.g. PermissionDenied when the identity is gone); `same` suppresses repeats.
 */
export async function* fullStateStream<T>(
  source: Pick<WorkloadIdentitySource, 'onChange'>,
  signal: AbortSignal,
  compute: () => T,
  same: (a: T, b: T) => boolean,
): AsyncGenerator<T> {
  let last: T | undefined;
  for await (const _ of changeTicks(source, signal)) {
    const next = compute();
    if (last !== undefined && same(last, next)) continue;
    last = next;
    yield next;
  }
}
