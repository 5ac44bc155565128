// The provider's token, kept until shortly before it expires and fetched once for all callers
// that arrive while a fetch runs (single flight). A failed fetch is not cached: every waiter gets
// its error and the next call tries again.

export interface CachedToken {
  readonly token: string;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** Epoch ms: when it is fetched again (60 s or 10% of its life before expiry). */
  readonly refreshAt: number;
}

/** Refresh margin: 10% of the lifetime, at most 60 s. */
export function refreshAt(fetchedAt: number, expiresAt: number): number {
  const life = expiresAt - fetchedAt;
  return expiresAt - Math.min(60_000, Math.floor(life / 10));
}

export class TokenCache {
  readonly #fetch: () => Promise<CachedToken>;
  readonly #now: () => number;
  #current: CachedToken | null = null;
  #inFlight: Promise<CachedToken> | null = null;

  constructor(fetchToken: () => Promise<CachedToken>, now: () => number) {
    this.#fetch = fetchToken;
    this.#now = now;
  }

  get(): Promise<CachedToken> {
    const c = this.#current;
    if (c !== null && this.#now() < c.refreshAt) return Promise.resolve(c);
    if (this.#inFlight === null) {
      this.#inFlight = this.#fetch().then(
        (t) => {
          this.#current = t;
          this.#inFlight = null;
          return t;
        },
        (e: unknown) => {
          this.#inFlight = null;
          throw e;
        },
      );
    }
    return this.#inFlight;
  }

  /** Forgets the token (the provider's config or secret changed). */
  clear(): void {
    this.#current = null;
  }
}
