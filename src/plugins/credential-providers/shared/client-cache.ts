// Cloud credentials per client: one entry per client SPIFFE ID (a provider holds one target —
// role, pool, app — so the client is the whole key), kept until shortly before the window in
// which the cloud SDKs stop using a credential, and fetched once for all callers of the same
// client that arrive while a fetch runs (single flight). A failed fetch is not cached: every
// waiter gets its error and the next call tries again. The number of clients kept is bounded.

/**
 * The AWS, Google and Azure SDKs treat a credential as expired 5 minutes before its expiry and
 * fetch another (AWS `credentialsTreatedAsExpired`, 300 000 ms). A credential handed out must
 * outlive that window, so the broker fetches a new one a minute before it opens.
 */
export const SDK_EXPIRY_WINDOW_MS = 5 * 60_000;
export const REFRESH_SLACK_MS = 60_000;
export const MAX_CACHED_CLIENTS = 10_000;

export interface Expiring {
  /** Epoch ms. */
  readonly expiresAt: number;
}

interface Entry<T> {
  readonly value: T;
  readonly refreshAt: number;
}

/**
 * When a credential fetched at `fetchedAt` is fetched again: 6 minutes before expiry, but never
 * before half its life (an upstream answering with short lifetimes must not cause a fetch per
 * release).
 */
export function cloudRefreshAt(fetchedAt: number, expiresAt: number): number {
  const life = expiresAt - fetchedAt;
  return Math.max(
    expiresAt - SDK_EXPIRY_WINDOW_MS - REFRESH_SLACK_MS,
    fetchedAt + Math.floor(life / 2),
  );
}

export class ClientCredentialCache<T extends Expiring> {
  readonly #now: () => number;
  readonly #max: number;
  readonly #entries = new Map<string, Entry<T>>();
  readonly #inFlight = new Map<string, Promise<T>>();

  constructor(now: () => number, max = MAX_CACHED_CLIENTS) {
    this.#now = now;
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached value of `key`, or the one `fetch` makes (once for concurrent callers). */
  get(key: string, fetch: () => Promise<T>): Promise<T> {
    const fetchedAt = this.#now();
    const e = this.#entries.get(key);
    if (e !== undefined && fetchedAt < e.refreshAt) return Promise.resolve(e.value);
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    const p = fetch().then(
      (value) => {
        this.#inFlight.delete(key);
        this.#store(key, { value, refreshAt: cloudRefreshAt(fetchedAt, value.expiresAt) });
        return value;
      },
      (err: unknown) => {
        this.#inFlight.delete(key);
        throw err;
      },
    );
    this.#inFlight.set(key, p);
    return p;
  }

  /** Forgets every credential (the provider is closed). */
  clear(): void {
    this.#entries.clear();
  }

  #store(key: string, entry: Entry<T>): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) {
      const now = this.#now();
      for (const [k, v] of this.#entries) if (now >= v.refreshAt) this.#entries.delete(k);
      // Still full: drop the oldest (Map order is insertion order; a refresh re-inserts).
      for (const k of this.#entries.keys()) {
        if (this.#entries.size < this.#max) break;
        this.#entries.delete(k);
      }
    }
    this.#entries.set(key, entry);
  }
}
