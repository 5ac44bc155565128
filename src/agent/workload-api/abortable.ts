// Bounding calls into the port, which has no cancellation of its own for some methods.

/** The rejection of withinDeadline when `ms` passed first. */
export class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

/**
 * Settles with `p`, or rejects with the abort reason when `signal` aborts first, or with a
 * DeadlineError after `ms`. The per-call hot path's bound: one timer and one listener, where
 * AbortSignal.any([signal, AbortSignal.timeout(ms)]) costs a dependent signal, a GC-tracked timer
 * and, when it fires, a DOMException.
 */
export function withinDeadline<T>(p: Promise<T>, signal: AbortSignal, ms: number): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      reject(new DeadlineError(ms));
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
