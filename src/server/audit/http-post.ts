// One JSON POST with bounded attempts and exponential backoff (0.5 s, 1 s, 2 s, ... at most 30 s
// apart). Any 2xx is delivery; anything else, or no answer within the timeout, is retried.
import { UnavailableError } from '../../core/errors.ts';

export async function postWithRetries(o: {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  attempts: number;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  onRetry?: (attempt: number, why: string) => void;
}): Promise<void> {
  const f = o.fetch ?? fetch;
  let why = '';
  for (let attempt = 1; attempt <= o.attempts; attempt++) {
    if (attempt > 1) {
      o.onRetry?.(attempt, why);
      await delay(Math.min(30_000, 500 * 2 ** (attempt - 2)), o.signal);
    }
    o.signal?.throwIfAborted();
    try {
      const res = await f(o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...o.headers },
        body: o.body,
        redirect: 'error',
        signal: o.signal
          ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)])
          : AbortSignal.timeout(o.timeoutMs),
      });
      await res.body?.cancel();
      if (res.ok) return;
      why = `HTTP ${res.status}`;
    } catch (e) {
      if (o.signal?.aborted) throw e;
      why = (e as Error).message;
    }
  }
  throw new UnavailableError(`POST ${o.url}: ${why} (after ${o.attempts} attempts)`);
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
