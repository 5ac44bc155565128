// Reconnect timing for Workload API streams: exponential backoff with full jitter, capped, reset
// after a successful message. Randomness and sleeping are injectable so tests run instantly.

export interface BackoffOptions {
  /** First delay in ms (default 1000, as go-spiffe). */
  readonly initialMs?: number;
  /** Cap in ms (default 30000). */
  readonly maxMs?: number;
  /** Growth factor per failed attempt (default 2). */
  readonly factor?: number;
  /** Fraction of each delay that is randomized, 0..1 (default 0.5). */
  readonly jitter?: number;
  /** Uniform [0, 1) (default Math.random). */
  readonly random?: () => number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(o: BackoffOptions = {}) {
    this.#initial = Math.max(0, o.initialMs ?? 1000);
    this.#max = Math.max(this.#initial, o.maxMs ?? 30_000);
    this.#factor = Math.max(1, o.factor ?? 2);
    this.#jitter = Math.min(1, Math.max(0, o.jitter ?? 0.5));
    this.#random = o.random ?? Math.random;
  }

  /** The delay before the next attempt; each call grows the following one. */
  next(): number {
    const base = Math.min(this.#max, this.#initial * this.#factor ** this.#attempt);
    if (base < this.#max) this.#attempt++;
    const spread = base * this.#jitter;
    return Math.round(base - spread + spread * this.#random());
  }

  reset(): void {
    this.#attempt = 0;
  }
}

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export const defaultSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
