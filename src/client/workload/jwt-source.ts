// JwtSource: JWT bundles kept current from the FetchJWTBundles stream, and JWT-SVIDs fetched on
// demand and cached until half their lifetime has passed (SPIRE agents rotate at the same point).
import { FailedPreconditionError, type TesseraError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import type { JwtBundle, JwtBundleSet, JwtBundleSource, JwtSvid, Updatable } from './types.ts';
import { Listeners, Watcher, type WatcherOptions } from './watcher.ts';
import type { CallOptions, JwtSvidParams } from './workload-client.ts';
import { withTimeout } from './x509-source.ts';

export interface JwtSourceOptions extends WatcherOptions {
  /** Epoch ms (default Date.now). */
  readonly clock?: () => number;
  /** Cached (spiffeId, audience) combinations kept at most (default 256). */
  readonly maxCacheEntries?: number;
}

interface CacheEntry {
  readonly svids: JwtSvid[];
  readonly refreshAt: number;
}

export class JwtSource implements JwtBundleSource, Updatable {
  readonly #w: Watcher<JwtBundleSet>;
  readonly #updates = new Listeners<[JwtBundleSet]>();
  readonly #clock: () => number;
  readonly #max: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<JwtSvid[]>>();
  #bundles: JwtBundleSet | undefined;

  constructor(o: JwtSourceOptions = {}) {
    this.#clock = o.clock ?? Date.now;
    this.#max = Math.max(1, o.maxCacheEntries ?? 256);
    this.#w = new Watcher<JwtBundleSet>(o);
    this.#w.start(
      (c, s) => c.watchJWTBundles(s),
      (b) => this.#apply(b),
      o,
    );
  }

  static async open(o: JwtSourceOptions & { timeoutMs?: number } = {}): Promise<JwtSource> {
    const src = new JwtSource(o);
    try {
      await withTimeout(src.ready(), o.timeoutMs);
      return src;
    } catch (e) {
      await src.close();
      throw e;
    }
  }

  /** Resolves with the first JWT bundles response. */
  ready(): Promise<void> {
    return this.#w.ready();
  }

  /** The default (first) JWT-SVID for the audience, or `spiffeId`'s; cached until half-life. */
  async fetchJwtSvid(p: JwtSvidParams, o: CallOptions = {}): Promise<JwtSvid> {
    const svid = (await this.fetchJwtSvids(p, o))[0];
    if (!svid) throw new FailedPreconditionError('the Workload API returned no JWT-SVID');
    return svid;
  }

  fetchJwtSvids(p: JwtSvidParams, o: CallOptions = {}): Promise<JwtSvid[]> {
    if (this.#w.closed)
      return Promise.reject(new FailedPreconditionError('the JwtSource is closed'));
    const key = cacheKey(p);
    const hit = this.#cache.get(key);
    if (hit && this.#clock() < hit.refreshAt) return Promise.resolve(hit.svids);
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#fetch(key, p, o).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  getJwtBundleForTrustDomain(trustDomain: string): JwtBundle | undefined {
    return this.#current().get(TrustDomain.parse(trustDomain).name);
  }

  getJwtBundles(): JwtBundleSet {
    return this.#current();
  }

  onUpdate(listener: (bundles: JwtBundleSet) => void): () => void {
    return this.#updates.add(listener);
  }

  onError(listener: (e: TesseraError) => void): () => void {
    return this.#w.errors.add(listener);
  }

  close(): Promise<void> {
    this.#cache.clear();
    return this.#w.close();
  }

  async #fetch(key: string, p: JwtSvidParams, o: CallOptions): Promise<JwtSvid[]> {
    const fetchedAt = this.#clock();
    const svids = await this.#w.client.fetchJWTSVIDs(p, o);
    const refreshAt = Math.min(
      ...svids.map((s) => {
        const start = Math.min(s.issuedAt ?? fetchedAt, fetchedAt);
        return start + (s.expiresAt - start) / 2;
      }),
    );
    if (svids.length > 0 && !this.#w.closed) {
      this.#cache.delete(key);
      this.#cache.set(key, { svids, refreshAt });
      this.#evict();
    }
    return svids;
  }

  #evict(): void {
    const now = this.#clock();
    for (const [k, v] of this.#cache) if (v.refreshAt <= now) this.#cache.delete(k);
    while (this.#cache.size > this.#max) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
  }

  #apply(b: JwtBundleSet): void {
    this.#bundles = b;
    this.#updates.emit(b);
  }

  #current(): JwtBundleSet {
    if (this.#w.closed) throw new FailedPreconditionError('the JwtSource is closed');
    if (!this.#bundles) throw new FailedPreconditionError('the JwtSource has no bundles yet');
    return this.#bundles;
  }
}

function cacheKey(p: JwtSvidParams): string {
  const aud = typeof p.audience === 'string' ? [p.audience] : [...new Set(p.audience)].sort();
  return JSON.stringify([p.spiffeId ?? '', aud]);
}
