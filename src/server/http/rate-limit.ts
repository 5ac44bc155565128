// Per-key token buckets (key: the client's address) for the public listener's POST endpoints,
// which anyone can reach: without a bound, a flood of bad tokens would cost a signature check and
// an audit record each. Memory is bounded: beyond `maxKeys` the least recently seen key is
// dropped (it starts again with a full bucket, which only ever favours the client).

export interface RateLimitOptions {
  /** Sustained requests per second per key; 0 disables the limit. */
  readonly perSecond: number;
  /** Requests a key may make at once after being idle. */
  readonly burst: number;
  readonly maxKeys?: number;
  /** Monotonic milliseconds. */
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #o: Required<RateLimitOptions>;
  /** Insertion order = least recently seen first. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(o: RateLimitOptions) {
    this.#o = { maxKeys: 10_000, now: () => performance.now(), ...o };
  }

  get enabled(): boolean {
    return this.#o.perSecond > 0;
  }

  /**
   * Takes `cost` tokens (one request, or the items of a batch; capped at the burst) for `key`;
   * false when its bucket holds fewer (the request is to be refused, nothing is taken).
   */
  take(key: string, cost = 1): boolean {
    if (!this.enabled) return true;
    const now = this.#o.now();
    const b = this.#buckets.get(key) ?? { tokens: this.#o.burst, at: now };
    this.#buckets.delete(key);
    b.tokens = Math.min(this.#o.burst, b.tokens + ((now - b.at) / 1000) * this.#o.perSecond);
    b.at = now;
    const n = Math.min(Math.max(1, cost), this.#o.burst);
    const allowed = b.tokens >= n;
    if (allowed) b.tokens -= n;
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.#o.maxKeys) {
      this.#buckets.delete(this.#buckets.keys().next().value as string);
    }
    return allowed;
  }

  /** Seconds until `key` has a token again (for Retry-After), at least 1. */
  retryAfterSeconds(key: string): number {
    const b = this.#buckets.get(key);
    if (!b || this.#o.perSecond <= 0) return 1;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#o.perSecond));
  }
}
