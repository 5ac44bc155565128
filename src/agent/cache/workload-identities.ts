// The agent's answer to "what may this workload have?": the WorkloadIdentitySource behind the
// Workload API. Workload selectors come from the workload attestors; an entry matches when all
// its selectors are among them; its SVIDs come from the caches, minted on demand when missing.
import type { KeyObject } from 'node:crypto';
import type { Bundle } from '../../core/bundle.ts';
import type { Clock } from '../../core/clock.ts';
import { type Entry, isExpired } from '../../core/entry.ts';
import { PermissionDeniedError, UnavailableError } from '../../core/errors.ts';
import { type Selector, formatSelector } from '../../core/selector.ts';
import { bundleToJwks } from '../../crypto/bundle-format.ts';
import { spkiToKeyObject } from '../../crypto/jwk.ts';
import { verifyJwtSvid } from '../../crypto/jwt/verify.ts';
import type { WorkloadAttestor } from '../../plugins/workload-attestors/workload-attestor.ts';
import type { EntrySync } from '../sync/entry-sync.ts';
import type {
  CallerProcess,
  JwtSvidItem,
  WorkloadIdentitySource,
  WorkloadView,
  X509SvidItem,
} from '../workload-api/identity-source.ts';
import { JwtSvidCache } from './jwt-svid-cache.ts';
import type { X509SvidCache } from './x509-svid-cache.ts';

const ON_DEMAND_MINT_TIMEOUT_MS = 10_000;

export interface WorkloadIdentitiesOptions {
  trustDomain: string;
  attestors: readonly WorkloadAttestor[];
  sync: EntrySync;
  x509: X509SvidCache;
  jwt: JwtSvidCache;
  /** NewJWTSVID on the server. */
  mintJwt: (
    entryId: string,
    audience: readonly string[],
  ) => Promise<{ token: string; expiresAt: number }>;
  clock: Clock;
  /**
   * Claims besides sub, aud and exp that ValidateJWTSVID returns for a JWT-SVID of a federated
   * trust domain (SPIRE's allowed_foreign_jwt_claims); the others are dropped. Default none.
   */
  allowedForeignJwtClaims?: readonly string[];
}

/** Claims of a foreign JWT-SVID that are always returned (as SPIRE does). */
const FOREIGN_CLAIMS_KEPT = ['sub', 'aud', 'exp'];

export class WorkloadIdentities implements WorkloadIdentitySource {
  readonly #o: WorkloadIdentitiesOptions;
  /** Selector → ids of the entries that have it; rebuilt when the entries change. */
  #bySelector: Map<string, string[]> | null = null;
  /** Entry id → arrival order, the tie-break between entries created in the same second. */
  #position = new Map<string, number>();
  /** Trust domain name → kid → key, for ValidateJWTSVID; dropped when the bundles change. */
  #jwtKeys = new Map<string, Map<string, KeyObject>>();
  /** JWKS JSON per bundle object (bundles are replaced on change, never mutated). */
  readonly #jwks = new WeakMap<Bundle, string>();
  readonly #foreignClaims: ReadonlySet<string>;

  constructor(o: WorkloadIdentitiesOptions) {
    this.#o = o;
    this.#foreignClaims = new Set([...FOREIGN_CLAIMS_KEPT, ...(o.allowedForeignJwtClaims ?? [])]);
    o.sync.onChange(() => {
      this.#bySelector = null;
      this.#jwtKeys = new Map();
    });
  }

  async attest(caller: CallerProcess, signal: AbortSignal): Promise<Selector[]> {
    // The Workload API server bounds the whole attestation (attestTimeoutMs) through `signal`.
    const all = await Promise.all(this.#o.attestors.map((a) => a.attest(caller.pid, signal)));
    const selectors = all.flat();
    // Mint what this workload needs and the cache lacks (evicted, or new) before it asks. When
    // that fails (the server is away: entries restored from the data dir, say), the caller gets
    // what there is — bundles and validation, but no X.509-SVID until one can be minted; the
    // cache logs the failure and backs off.
    const missing = this.#matching(selectors)
      .filter((e) => !this.#o.x509.get(e.id))
      .map((e) => e.id);
    if (missing.length > 0) {
      await Promise.race([
        this.#o.x509.refresh(this.#o.sync.entries, missing).catch(() => {}),
        new Promise((r) => setTimeout(r, ON_DEMAND_MINT_TIMEOUT_MS).unref()),
      ]);
    }
    return selectors;
  }

  view(selectors: readonly Selector[]): WorkloadView {
    const entries = this.#matching(selectors);
    const svids: X509SvidItem[] = [];
    for (const e of entries) {
      const s = this.#o.x509.get(e.id);
      if (!s) continue;
      svids.push({
        spiffeId: s.spiffeId,
        chainDer: s.chainDer,
        keyPkcs8Der: s.keyPkcs8Der,
        hint: e.hint,
        entryId: e.id,
        expiresAt: s.expiresAt,
      });
    }
    // Every matching entry counts, as in SPIRE: a workload gets exactly the federated bundles
    // its entries federate with (and that this agent holds).
    const federates = new Set(entries.flatMap((e) => e.federatesWith));
    const bundle = this.#o.sync.bundle;
    const tdId = `spiffe://${this.#o.trustDomain}`;
    const federatedBundles = new Map<string, readonly Uint8Array[]>();
    const jwtBundles = new Map<string, string>(bundle ? [[tdId, this.#jwksJson(bundle)]] : []);
    const held = this.#o.sync.federatedBundles;
    for (const td of [...federates].sort()) {
      const b = held.get(td);
      if (!b || td === this.#o.trustDomain) continue;
      federatedBundles.set(
        `spiffe://${td}`,
        b.x509Authorities.map((a) => a.der),
      );
      jwtBundles.set(`spiffe://${td}`, this.#jwksJson(b));
    }
    return {
      svids,
      identified: entries.length > 0,
      trustDomainId: tdId,
      bundle: bundle?.x509Authorities.map((a) => a.der) ?? [],
      federatedBundles,
      jwtBundles,
    };
  }

  #jwksJson(b: Bundle): string {
    let json = this.#jwks.get(b);
    if (json === undefined) {
      json = JSON.stringify(bundleToJwks(b));
      this.#jwks.set(b, json);
    }
    return json;
  }

  onChange(listener: () => void): () => void {
    const a = this.#o.sync.onChange(listener);
    const b = this.#o.x509.onChange(listener);
    return () => {
      a();
      b();
    };
  }

  async fetchJwtSvids(
    selectors: readonly Selector[],
    audience: readonly string[],
    spiffeId: string,
  ): Promise<JwtSvidItem[]> {
    const entries = this.#matching(selectors).filter(
      (e) => spiffeId === '' || e.spiffeId === spiffeId,
    );
    if (entries.length === 0) throw new PermissionDeniedError('no identity issued');
    const out: JwtSvidItem[] = [];
    for (const e of entries) {
      const key = JwtSvidCache.key(e.spiffeId, audience);
      let token = this.#o.jwt.get(key);
      if (!token) {
        const now = this.#o.clock.now();
        // One retry: a call can die with a connection the server just closed (GOAWAY, restart).
        const minted = await this.#o
          .mintJwt(e.id, audience)
          .catch(() => this.#o.mintJwt(e.id, audience))
          .catch((err: unknown) => {
            throw new UnavailableError(`could not mint a JWT-SVID: ${(err as Error).message}`, {
              cause: err,
            });
          });
        token = minted.token;
        this.#o.jwt.put(key, token, now, minted.expiresAt);
      }
      out.push({ spiffeId: e.spiffeId, token, hint: e.hint });
    }
    return out;
  }

  async validateJwtSvid(
    token: string,
    audience: string,
    selectors: readonly Selector[],
  ): Promise<{ spiffeId: string; claims: Record<string, unknown> }> {
    const own = this.#o.trustDomain;
    const federates = new Set(this.#matching(selectors).flatMap((e) => e.federatesWith));
    const v = await verifyJwtSvid(token, {
      audience,
      now: this.#o.clock.now(),
      resolveKey: (td, kid) => (td === own || federates.has(td) ? this.#jwtKey(td, kid) : null),
    });
    if (v.id.trustDomain.name === this.#o.trustDomain)
      return { spiffeId: v.spiffeId, claims: v.claims };
    // A federated trust domain's other claims are its own business, not ours to vouch for.
    const claims = Object.fromEntries(
      Object.entries(v.claims).filter(([k]) => this.#foreignClaims.has(k)),
    );
    return { spiffeId: v.spiffeId, claims };
  }

  /** The key for (trust domain, kid) from the own bundle or a federated bundle this agent holds. */
  #jwtKey(td: string, kid: string): KeyObject | null {
    let keys = this.#jwtKeys.get(td);
    if (!keys) {
      const b =
        td === this.#o.trustDomain ? this.#o.sync.bundle : this.#o.sync.federatedBundles.get(td);
      if (!b) return null;
      keys = new Map(b.jwtAuthorities.map((k) => [k.kid, spkiToKeyObject(k.publicKeyDer)]));
      this.#jwtKeys.set(td, keys);
    }
    return keys.get(kid) ?? null;
  }

  /** Unexpired entries whose selectors are all among `selectors`, oldest first. */
  #matching(selectors: readonly Selector[]): Entry[] {
    const have = new Set(selectors.map(formatSelector));
    const index = this.#index();
    const now = this.#o.clock.now();
    const seen = new Set<string>();
    const out: Entry[] = [];
    for (const s of have) {
      for (const id of index.get(s) ?? []) {
        if (seen.has(id)) continue;
        seen.add(id);
        const e = this.#o.sync.entries.get(id);
        if (e && !isExpired(e, now) && e.selectors.every((x) => have.has(formatSelector(x))))
          out.push(e);
      }
    }
    const pos = (id: string) => this.#position.get(id) ?? 0;
    return out.sort((a, b) => a.createdAt - b.createdAt || pos(a.id) - pos(b.id));
  }

  #index(): Map<string, string[]> {
    if (!this.#bySelector) {
      const m = new Map<string, string[]>();
      this.#position = new Map();
      for (const e of this.#o.sync.entries.values()) {
        this.#position.set(e.id, this.#position.size);
        for (const s of e.selectors) {
          const k = formatSelector(s);
          const list = m.get(k);
          if (list) list.push(e.id);
          else m.set(k, [e.id]);
        }
      }
      this.#bySelector = m;
    }
    return this.#bySelector;
  }
}
