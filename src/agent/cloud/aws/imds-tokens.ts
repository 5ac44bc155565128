// IMDSv2 session tokens, as EC2 hands them out (`PUT /latest/api/token`), bound to the process
// that asked: a token is good only for requests from the same process (pid and start time, the
// pin taken when its connection was accepted) until its TTL ends. A token leaked to another
// process — or replayed through an SSRF in another workload — is refused (401), as is one that
// expired. Tokens are kept by their SHA-256, so a lookup reveals nothing through its timing.
import { createHash, randomBytes } from 'node:crypto';

/** The TTL header's bounds, as EC2's (seconds). */
export const MIN_TTL_SECONDS = 1;
export const MAX_TTL_SECONDS = 21_600;
/** Most tokens kept at once; the oldest go first beyond it. */
export const MAX_TOKENS = 10_000;

export type TokenCheck = 'ok' | 'missing' | 'expired' | 'foreign' | 'unknown';

interface Issued {
  readonly process: string;
  readonly expiresAt: number;
}

const digest = (token: string) => createHash('sha256').update(token).digest('base64');

/** Parses the TTL header: an integer 1..21600, or null (EC2 answers 400). */
export function parseTtl(header: string | string[] | undefined): number | null {
  if (typeof header !== 'string' || !/^\d{1,5}$/.test(header)) return null;
  const ttl = Number(header);
  return ttl >= MIN_TTL_SECONDS && ttl <= MAX_TTL_SECONDS ? ttl : null;
}

export class ImdsTokens {
  readonly #now: () => number;
  readonly #tokens = new Map<string, Issued>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A new token for `process` (its pin key), valid `ttlSeconds`. */
  issue(process: string, ttlSeconds: number): string {
    const now = this.#now();
    if (this.#tokens.size >= MAX_TOKENS) this.#sweep(now);
    const token = randomBytes(42).toString('base64');
    this.#tokens.set(digest(token), { process, expiresAt: now + ttlSeconds * 1000 });
    return token;
  }

  check(token: string | string[] | undefined, process: string): TokenCheck {
    if (typeof token !== 'string' || token === '') return 'missing';
    const t = this.#tokens.get(digest(token));
    if (!t) return 'unknown';
    if (this.#now() >= t.expiresAt) {
      this.#tokens.delete(digest(token));
      return 'expired';
    }
    return t.process === process ? 'ok' : 'foreign';
  }

  get size(): number {
    return this.#tokens.size;
  }

  #sweep(now: number): void {
    for (const [k, t] of this.#tokens) if (now >= t.expiresAt) this.#tokens.delete(k);
    while (this.#tokens.size >= MAX_TOKENS) {
      this.#tokens.delete(this.#tokens.keys().next().value as string);
    }
  }
}
