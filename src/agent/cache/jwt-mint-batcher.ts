// JWT-SVID cache misses coalesced into few server calls. The server is the only JWT authority
// (its keys never leave it), so every miss costs a round trip; under load, misses that arrive
// while calls are in flight wait for the next call and go together in one BatchNewJWTSVID:
// one authentication, one HTTP/2 stream and one audit group commit for up to `maxBatch` tokens.
// A lone miss is sent at once (no added delay). Identical concurrent misses (same entry, same
// audience set) share one mint. A server without BatchNewJWTSVID (older version: Unimplemented)
// is served one NewJWTSVID per miss from then on.
import { Code, ConnectError } from '@connectrpc/connect';
import { type ErrorCode, TesseraError, errorCodes } from '../../core/errors.ts';
import { JwtSvidCache } from './jwt-svid-cache.ts';

export interface MintedJwt {
  readonly token: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

export interface JwtMintItem {
  readonly entryId: string;
  readonly audience: readonly string[];
  /** The workload's attributes, for an entry with a condition (docs/posture.md). */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** Per item: the token, or the server's reason (a stable error code and its message). */
export type JwtMintResult = MintedJwt | { readonly code: string; readonly message: string };

export interface JwtMintBatcherOptions {
  /** BatchNewJWTSVID: one result per item, in order. */
  readonly mintBatch: (items: readonly JwtMintItem[]) => Promise<JwtMintResult[]>;
  /** NewJWTSVID, for servers that do not have the batch call. */
  readonly mintOne: (item: JwtMintItem) => Promise<MintedJwt>;
  /** Server calls in flight at once; further misses queue for the next one. Default 1. */
  readonly maxInFlight?: number;
  /** Items per call (the server accepts up to 500). Default 256. */
  readonly maxBatch?: number;
}

interface Waiter {
  readonly item: JwtMintItem;
  readonly key: string;
  readonly resolve: (m: MintedJwt) => void;
  readonly reject: (e: unknown) => void;
}

export class JwtMintBatcher {
  readonly #o: JwtMintBatcherOptions;
  readonly #maxInFlight: number;
  readonly #maxBatch: number;
  #queue: Waiter[] = [];
  /** Misses queued or in flight, by entry + audience set: a second asker shares the first mint. */
  readonly #pending = new Map<string, Promise<MintedJwt>>();
  #inFlight = 0;
  #scheduled = false;
  #batchUnsupported = false;

  constructor(o: JwtMintBatcherOptions) {
    this.#o = o;
    this.#maxInFlight = o.maxInFlight ?? 1;
    this.#maxBatch = o.maxBatch ?? 256;
  }

  mint(
    entryId: string,
    audience: readonly string[],
    attributes?: Readonly<Record<string, string>>,
  ): Promise<MintedJwt> {
    // Workloads with different attributes never share a conditional mint (the server decides each).
    const key =
      JwtSvidCache.key(entryId, audience) + (attributes ? JSON.stringify(attributes) : '');
    const shared = this.#pending.get(key);
    if (shared) return shared;
    const p = new Promise<MintedJwt>((resolve, reject) => {
      const item = { entryId, audience: [...audience], ...(attributes ? { attributes } : {}) };
      this.#queue.push({ item, key, resolve, reject });
    });
    this.#pending.set(key, p);
    // Settled → forgotten, so a later miss (after expiry, or after a failure) mints afresh.
    const forget = () => {
      if (this.#pending.get(key) === p) this.#pending.delete(key);
    };
    p.then(forget, forget);
    this.#schedule();
    return p;
  }

  /** Sends after the current turn of the event loop, so misses arriving together go together. */
  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#maxInFlight) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inFlight++;
      void this.#send(batch).finally(() => {
        this.#inFlight--;
        if (this.#queue.length > 0) this.#schedule();
      });
    }
  }

  async #send(batch: Waiter[]): Promise<void> {
    if (this.#batchUnsupported) return this.#sendOneByOne(batch);
    let results: JwtMintResult[];
    try {
      results = await this.#o.mintBatch(batch.map((w) => w.item));
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.Unimplemented) {
        this.#batchUnsupported = true;
        return this.#sendOneByOne(batch);
      }
      for (const w of batch) w.reject(e);
      return;
    }
    for (const [i, w] of batch.entries()) {
      const r = results[i];
      if (r === undefined) w.reject(new Error('the server returned fewer results than asked for'));
      else if ('token' in r) w.resolve(r);
      else w.reject(new TesseraError(codeOf(r.code), r.message));
    }
  }

  async #sendOneByOne(batch: Waiter[]): Promise<void> {
    await Promise.all(batch.map((w) => this.#o.mintOne(w.item).then(w.resolve, w.reject)));
  }
}

function codeOf(code: string): ErrorCode {
  return (errorCodes as readonly string[]).includes(code) ? (code as ErrorCode) : 'internal';
}
