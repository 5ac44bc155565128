// Credentials the server released, kept per client (entry, attested selectors) and server workload
// so a workload asking again gets the same credential without a round trip (docs/access.md,
// "Getting a credential"). The server stays the authority: nothing is cached that it did not
// release for exactly this client, and everything is dropped as soon as something it decided on
// may have changed:
//   - the whole cache when the sync stream's `access_revision` differs from the last one seen
//     (a policy, provider, server workload or secret changed, or leases were revoked) and when
//     the stream (re)connects (its initial message: changes while it was away are unknown);
//   - one client's credentials when its entry is removed or changed;
//   - each credential shortly before it expires (static ones only on a change).
// Denials are not cached: a grant must take effect at once, and the server records every ask.
// Concurrent identical asks share one release (single flight). While the server is away, a
// credential inside its refresh margin keeps being served until it really expires.
import type { Clock } from '../../core/clock.ts';
import type { AccessHttpRequest, Credential } from '../../core/access.ts';
import { isTesseraError } from '../../core/errors.ts';

/** A released credential with what the workload is told about it. */
export interface ReleasedCredential {
  readonly credential: Credential;
  /** The client's SPIFFE ID and the server workload, as the server released it. */
  readonly spiffeId: string;
  readonly server: string;
  readonly present: string;
  readonly policy: string;
  readonly credentialProvider: string;
  readonly correlationId: string;
  /**
   * The server decided under a condition reading `request`: served again only for the same
   * HTTP request (method, path, host).
   */
  readonly requestDependent?: boolean;
}

/** A denial, as the server decided it (never cached). */
export interface CredentialDenial {
  readonly reason: string;
  readonly policy: string;
  readonly failedCondition: string;
  readonly correlationId: string;
}

export type ReleaseOutcome =
  | { readonly kind: 'released'; readonly released: ReleasedCredential }
  | { readonly kind: 'denied'; readonly denial: CredentialDenial };

/** Who asks for what: the cache never answers one client with another's credential. */
export interface CredentialKey {
  readonly entryId: string;
  /** The entry's revision when asked: a changed entry is another client. */
  readonly entryRevision: number;
  /** The attested selectors (and attributes) the server decided on, canonical (see selectorsKey). */
  readonly clientKey: string;
  readonly server: string;
  /**
   * The HTTP request asked for (proxy, credential API with request facts). A credential the
   * server marks requestDependent is kept for exactly this request; any other is kept for the
   * client and server workload alone, and serves every request.
   */
  readonly request?: AccessHttpRequest;
}

export interface CredentialCacheOptions {
  readonly clock: Clock;
  /** Most credentials kept; the oldest are dropped beyond it. */
  readonly maxSize: number;
  /** Longest refresh margin before expiry. Default 30 s. */
  readonly maxMarginMs?: number;
}

interface Item {
  readonly key: CredentialKey;
  readonly released: ReleasedCredential;
  /** Served from the cache until then (epoch ms); Infinity for static credentials. */
  readonly refreshAt: number;
  /** Never served after this, not even while the server is away. */
  readonly expiresAt: number;
}

/** Where an answer came from (tests and the bench check it). */
export type Served = ReleaseOutcome & { readonly cached: boolean };

export class CredentialCache {
  readonly #clock: Clock;
  readonly #maxSize: number;
  readonly #maxMarginMs: number;
  readonly #items = new Map<string, Item>();
  readonly #flights = new Map<string, Promise<ReleaseOutcome>>();
  /** Bumped by every purge: a release that started before it is served, not kept. */
  #generation = 0;
  #revision: bigint | null = null;

  constructor(o: CredentialCacheOptions) {
    this.#clock = o.clock;
    this.#maxSize = o.maxSize;
    this.#maxMarginMs = o.maxMarginMs ?? 30_000;
  }

  /** The key of what serves every request (credentials that are not request-dependent). */
  static keyOf(k: CredentialKey): string {
    return `${k.entryId}\u0000${k.entryRevision}\u0000${k.server}\u0000${k.clientKey}`;
  }

  /** The key of a request-dependent credential (and of a release in flight for a request). */
  static requestKeyOf(k: CredentialKey): string {
    const r = k.request;
    if (!r) return CredentialCache.keyOf(k);
    return `${CredentialCache.keyOf(k)}\u0001${r.method}\u0000${r.host}\u0000${r.path}`;
  }

  /** The item answering `key`: one kept for its request, else one that serves every request. */
  #item(key: CredentialKey): Item | undefined {
    if (!key.request) return this.#items.get(CredentialCache.keyOf(key));
    return (
      this.#items.get(CredentialCache.requestKeyOf(key)) ??
      this.#items.get(CredentialCache.keyOf(key))
    );
  }

  get size(): number {
    return this.#items.size;
  }

  /**
   * The fresh cached credential for `key`, if any (no release). `minValidityMs`: only one that
   * stays valid at least that long (the cloud SDKs drop a credential 5 minutes before expiry).
   */
  peek(key: CredentialKey, minValidityMs = 0): ReleasedCredential | undefined {
    const item = this.#item(key);
    return item && this.#fresh(item, minValidityMs) ? item.released : undefined;
  }

  #fresh(item: Item, minValidityMs: number): boolean {
    const now = this.#clock.now();
    return now < item.refreshAt && (minValidityMs === 0 || now + minValidityMs < item.expiresAt);
  }

  /**
   * The cached credential while fresh, else the one release in flight for the same key, else a
   * new release. A release that fails because the server is away (unavailable) falls back to a
   * cached credential that has not expired yet.
   */
  async get(
    key: CredentialKey,
    release: () => Promise<ReleaseOutcome>,
    minValidityMs = 0,
  ): Promise<Served> {
    const k = CredentialCache.requestKeyOf(key);
    const item = this.#item(key);
    if (item && this.#fresh(item, minValidityMs)) {
      return { kind: 'released', released: item.released, cached: true };
    }
    let flight = this.#flights.get(k);
    if (!flight) {
      flight = this.#release(k, key, release);
      this.#flights.set(k, flight);
    }
    try {
      return { ...(await flight), cached: false };
    } catch (e) {
      const stale = this.#item(key);
      if (stale && isTesseraError(e) && e.code === 'unavailable') {
        if (this.#clock.now() < stale.expiresAt) {
          return { kind: 'released', released: stale.released, cached: true };
        }
      }
      throw e;
    }
  }

  async #release(
    k: string,
    key: CredentialKey,
    release: () => Promise<ReleaseOutcome>,
  ): Promise<ReleaseOutcome> {
    const generation = this.#generation;
    try {
      const out = await release();
      if (out.kind === 'released' && generation === this.#generation) this.#keep(key, out);
      else if (out.kind === 'denied') this.#items.delete(k);
      return out;
    } finally {
      this.#flights.delete(k);
    }
  }

  #keep(key: CredentialKey, out: ReleaseOutcome & { kind: 'released' }): void {
    // A request-dependent credential serves its own request only (none when none was named);
    // any other serves every request of this client to this server workload.
    if (out.released.requestDependent && !key.request) return;
    const k = out.released.requestDependent
      ? CredentialCache.requestKeyOf(key)
      : CredentialCache.keyOf(key);
    const now = this.#clock.now();
    const exp = out.released.credential.expiresAt;
    let refreshAt = Infinity;
    if (exp !== null) {
      // A fifth of the remaining lifetime, at most maxMarginMs: a 1-minute credential is asked
      // again 12 s before it ends, an hour's 30 s before.
      refreshAt = exp - Math.min(this.#maxMarginMs, (exp - now) / 5);
      if (refreshAt <= now) {
        this.#items.delete(k);
        return;
      }
    }
    this.#items.delete(k);
    this.#items.set(k, { key, released: out.released, refreshAt, expiresAt: exp ?? Infinity });
    while (this.#items.size > this.#maxSize) {
      this.#items.delete(this.#items.keys().next().value as string);
    }
  }

  /**
   * The sync stream's access revision. `initial`: the stream's first message after (re)connecting
   * — everything is dropped, whatever the value. Otherwise 0 means "unchanged" (the field is set
   * only on messages that follow a change) and any other value that differs drops everything.
   */
  noteAccessRevision(revision: bigint, initial: boolean): void {
    if (!initial && (revision === 0n || revision === this.#revision)) return;
    this.#revision = revision;
    this.clear();
  }

  /** Drops every credential (and keeps no release that is in flight now). */
  clear(): void {
    this.#generation++;
    this.#items.clear();
  }

  /**
   * Drops the credentials of clients whose entry is gone or changed (a new revision): called
   * with the synced entries whenever they change.
   */
  retainEntries(entries: ReadonlyMap<string, { readonly revision: number }>): void {
    // In-flight releases may be for an entry that just changed: none of them is kept.
    if (this.#flights.size > 0) this.#generation++;
    for (const [k, item] of this.#items) {
      if (entries.get(item.key.entryId)?.revision !== item.key.entryRevision) {
        this.#items.delete(k);
      }
    }
  }
}
