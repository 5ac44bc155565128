// JWT-SVIDs cached per (SPIFFE ID, audience set) until half their lifetime, bounded (LRU).
import type { Clock } from '../../core/clock.ts';

interface CachedJwt {
  readonly token: string;
  readonly refreshAt: number;
}

export class JwtSvidCache {
  readonly #clock: Clock;
  readonly #maxSize: number;
  /** Insertion order = least recently used first. */
  readonly #items = new Map<string, CachedJwt>();

  constructor(clock: Clock, maxSize: number) {
    this.#clock = clock;
    this.#maxSize = maxSize;
  }

  static key(spiffeId: string, audience: readonly string[]): string {
    return `${spiffeId}\n${[...new Set(audience)].sort().join('\n')}`;
  }

  get(key: string): string | undefined {
    const item = this.#items.get(key);
    if (!item) return undefined;
    this.#items.delete(key);
    if (this.#clock.now() >= item.refreshAt) return undefined;
    this.#items.set(key, item);
    return item.token;
  }

  /** `issuedAt` and `expiresAt` in epoch ms. */
  put(key: string, token: string, issuedAt: number, expiresAt: number): void {
    this.#items.delete(key);
    this.#items.set(key, { token, refreshAt: issuedAt + (expiresAt - issuedAt) / 2 });
    while (this.#items.size > this.#maxSize)
      this.#items.delete(this.#items.keys().next().value as string);
  }

  get size(): number {
    return this.#items.size;
  }
}
