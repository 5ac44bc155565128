// The agent's answer to "what may this workload have?": the WorkloadIdentitySource behind the
// Workload API. The caller arrives attested, its entries matched (agent/attestation); here its
// SVIDs come from the caches, minted on demand when missing, and its bundles are assembled.
import type { KeyObject } from 'node:crypto';
import type { Bundle } from '../../core/bundle.ts';
import type { Clock } from '../../core/clock.ts';
import { PermissionDeniedError, UnavailableError } from '../../core/errors.ts';
import { bundleToJwks } from '../../crypto/bundle-format.ts';
import { spkiToKeyObject } from '../../crypto/jwk.ts';
import { verifyJwtSvid } from '../../crypto/jwt/verify.ts';
import type { EntrySync } from '../sync/entry-sync.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type {
  JwtSvidItem,
  WorkloadIdentitySource,
  WorkloadView,
  X509SvidItem,
} from '../workload-api/identity-source.ts';
import { JwtSvidCache } from './jwt-svid-cache.ts';
import { type ConditionVerdicts, hasCondition } from './condition-verdicts.ts';
import type { Entry } from '../../core/entry.ts';

const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});
import type { X509SvidCache } from './x509-svid-cache.ts';

const ON_DEMAND_MINT_TIMEOUT_MS = 10_000;

export interface WorkloadIdentitiesOptions {
  trustDomain: string;
  sync: EntrySync;
  x509: X509SvidCache;
  jwt: JwtSvidCache;
  /** NewJWTSVID on the server. */
  mintJwt: (
    entryId: string,
    audience: readonly string[],
    attributes?: Readonly<Record<string, string>>,
  ) => Promise<{ token: string; expiresAt: number }>;
  /**
   * The server's answers on entry conditions (docs/posture.md); absent: conditional entries are
   * never served (the agent cannot ask).
   */
  verdicts?: ConditionVerdicts;
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
  /** Trust domain name → kid → key, for ValidateJWTSVID; dropped when the bundles change. */
  #jwtKeys = new Map<string, Map<string, KeyObject>>();
  /** JWKS JSON per bundle object (bundles are replaced on change, never mutated). */
  readonly #jwks = new WeakMap<Bundle, string>();
  readonly #foreignClaims: ReadonlySet<string>;
  /** Conditional entry id → attributes of the last workload allowed it (sent with its mints). */
  readonly #qualified = new Map<string, Readonly<Record<string, string>>>();

  constructor(o: WorkloadIdentitiesOptions) {
    this.#o = o;
    this.#foreignClaims = new Set([...FOREIGN_CLAIMS_KEPT, ...(o.allowedForeignJwtClaims ?? [])]);
    o.sync.onChange(() => {
      this.#jwtKeys = new Map();
    });
  }

  /** Attributes of a workload that met the entry's condition, for the X.509 cache's mints. */
  attributesFor(entryId: string): Readonly<Record<string, string>> | undefined {
    return this.#qualified.get(entryId);
  }

  /**
   * The caller's entries it may be served now: all unconditional ones, and the conditional ones
   * the server said it meets (for these attributes, this entry revision). An unknown answer is
   * asked for (listeners hear when it arrives) and withholds the entry meanwhile.
   */
  #served(caller: AttestedCaller): readonly Entry[] {
    if (!caller.entries.some(hasCondition)) return caller.entries;
    const attrs = caller.attributes ?? NO_ATTRIBUTES;
    const verdicts = this.#o.verdicts;
    if (!verdicts) return caller.entries.filter((e) => !hasCondition(e));
    let unknown = false;
    const out = caller.entries.filter((e) => {
      const v = verdicts.allowed(attrs, e);
      if (v === undefined) unknown = true;
      if (v === true && hasCondition(e)) this.#qualified.set(e.id, attrs);
      return v === true;
    });
    if (unknown) void verdicts.ensure(attrs, caller.entries).catch(() => {});
    return out;
  }

  /** Asks the server about the caller's conditional entries (bounded), before serving it. */
  async #decide(caller: AttestedCaller): Promise<void> {
    const verdicts = this.#o.verdicts;
    if (!verdicts || !caller.entries.some(hasCondition)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      verdicts.ensure(caller.attributes ?? NO_ATTRIBUTES, caller.entries).catch(() => {}),
      new Promise((r) => (timer = setTimeout(r, ON_DEMAND_MINT_TIMEOUT_MS).unref())),
    ]);
    clearTimeout(timer);
  }

  async prepare(caller: AttestedCaller): Promise<void> {
    await this.#decide(caller);
    // Mint what this workload needs and the cache lacks (evicted, or new) before it asks. When
    // that fails (the server is away: entries restored from the data dir, say), the caller gets
    // what there is — bundles and validation, but no X.509-SVID until one can be minted; the
    // cache logs the failure and backs off.
    const missing = this.#served(caller)
      .filter((e) => !this.#o.x509.get(e.id))
      .map((e) => e.id);
    if (missing.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#o.x509.refresh(this.#o.sync.entries, missing).catch(() => {}),
        new Promise((r) => (timer = setTimeout(r, ON_DEMAND_MINT_TIMEOUT_MS).unref())),
      ]);
      clearTimeout(timer);
    }
  }

  view(caller: AttestedCaller): WorkloadView {
    const entries = this.#served(caller);
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
    const c = this.#o.verdicts?.onChange(listener);
    return () => {
      a();
      b();
      c?.();
    };
  }

  cachedJwtSvids(
    caller: AttestedCaller,
    audience: readonly string[],
    spiffeId: string,
  ): JwtSvidItem[] | undefined {
    const out: JwtSvidItem[] = [];
    for (const e of this.#served(caller)) {
      if (spiffeId !== '' && e.spiffeId !== spiffeId) continue;
      const token = this.#o.jwt.get(JwtSvidCache.key(e.spiffeId, audience));
      if (token === undefined) return undefined;
      out.push({ spiffeId: e.spiffeId, token, hint: e.hint });
    }
    return out.length === 0 ? undefined : out;
  }

  async fetchJwtSvids(
    caller: AttestedCaller,
    audience: readonly string[],
    spiffeId: string,
  ): Promise<JwtSvidItem[]> {
    await this.#decide(caller);
    const entries = this.#served(caller).filter((e) => spiffeId === '' || e.spiffeId === spiffeId);
    if (entries.length === 0) throw new PermissionDeniedError('no identity issued');
    const out: JwtSvidItem[] = [];
    for (const e of entries) {
      const key = JwtSvidCache.key(e.spiffeId, audience);
      let token = this.#o.jwt.get(key);
      if (!token) {
        const now = this.#o.clock.now();
        // One retry: a call can die with a connection the server just closed (GOAWAY, restart).
        const attrs = hasCondition(e) ? (caller.attributes ?? NO_ATTRIBUTES) : undefined;
        const minted = await this.#o
          .mintJwt(e.id, audience, attrs)
          .catch(() => this.#o.mintJwt(e.id, audience, attrs))
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
    caller: AttestedCaller,
  ): Promise<{ spiffeId: string; claims: Record<string, unknown> }> {
    const own = this.#o.trustDomain;
    const federates = new Set(caller.entries.flatMap((e) => e.federatesWith));
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
}
