// Federated JWT-SVIDs as subject tokens. A JWT-SVID whose `sub` is a SPIFFE ID of another trust
// domain is verified with the JWT authorities of that trust domain's bundle held by this server
// (the BundleStore, where federation puts it) — when `sts.issuers` has a pseudo-issuer entry
// `spiffe://<trust domain>` naming the audiences it must carry. Trust policies for it name that
// pseudo-issuer. The `iss` claim plays no part (JWT-SVID §3: optional, not used for validation):
// the claims handed to policies carry `iss` = the pseudo-issuer instead.
//
// The key is resolved by (trust domain of `sub`, `kid`); tainted keys are refused; the algorithm
// must fit the key type (crypto/jwt/verify.ts). Bundles are read through a small cache: a bundle
// (or its absence) is at most `maxStalenessMs` old when used, and concurrent misses share one read.
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Bundle } from '../../core/bundle.ts';
import { SpiffeId, TrustDomain } from '../../core/spiffe-id.ts';
import { verifyJwtSvid } from '../../crypto/jwt/verify.ts';
import { OAuthError } from './errors.ts';
import { clip } from './form.ts';
import { LEEWAY_SECONDS, MAX_SUBJECT_TOKEN_BYTES, type VerifiedSubjectToken } from './issuers.ts';

export const FEDERATED_ISSUER_PREFIX = 'spiffe://';
/** Default bound on how old a cached federated bundle may be when used. */
export const DEFAULT_BUNDLE_MAX_STALENESS_MS = 30_000;

/** The trust domain named by a pseudo-issuer `spiffe://<td>`, or undefined for anything else. */
export function federatedTrustDomain(issuer: string): string | undefined {
  if (!issuer.startsWith(FEDERATED_ISSUER_PREFIX)) return undefined;
  try {
    return TrustDomain.parse(issuer).name;
  } catch {
    return undefined;
  }
}

export interface FederatedSubjectTokensOptions {
  /** Our own trust domain: its JWT-SVIDs are not federated subject tokens. */
  readonly trustDomain: string;
  /** Trust domain → the audiences a JWT-SVID of it must carry (one of). */
  readonly audiences: ReadonlyMap<string, readonly string[]>;
  /** Reads a trust domain's bundle from the store. */
  bundle(trustDomain: string): Promise<Bundle | null>;
  readonly maxStalenessMs: number;
  now(): number;
}

interface Cached {
  readonly fetchedAt: number;
  readonly bundle: Bundle | null;
  /** kid → key, parsed once per bundle. */
  readonly keys: Map<string, KeyObject | null>;
}

const grant = (description: string, reason?: string) =>
  new OAuthError('invalid_grant', description, reason);

export class FederatedSubjectTokens {
  readonly #o: FederatedSubjectTokensOptions;
  readonly #cache = new Map<string, Cached>();
  readonly #loading = new Map<string, Promise<Cached>>();

  constructor(o: FederatedSubjectTokensOptions) {
    this.#o = o;
  }

  /** The pseudo-issuers configured (`spiffe://<td>`). */
  issuers(): string[] {
    return [...this.#o.audiences.keys()].map((td) => FEDERATED_ISSUER_PREFIX + td);
  }

  /**
   * Whether the (unverified) claims look like a JWT-SVID of a foreign trust domain: `sub` is a
   * spiffe:// ID. Only then is verify() the path for the token.
   */
  static claimsSpiffeSubject(claims: Record<string, unknown>): boolean {
    return typeof claims.sub === 'string' && claims.sub.startsWith(FEDERATED_ISSUER_PREFIX);
  }

  /** Verifies a JWT-SVID of a federated trust domain; every failure is invalid_grant. */
  async verify(
    token: string,
    claims: Record<string, unknown>,
    nowMs: number,
  ): Promise<VerifiedSubjectToken> {
    // The trust domain of the (not yet verified) sub picks the audiences and the bundle;
    // verifyJwtSvid resolves the key by the same sub, so both agree.
    let td: string;
    try {
      td = SpiffeId.parse(String(claims.sub)).trustDomain.name;
    } catch {
      throw grant('subject token is invalid', 'sub is not a valid SPIFFE ID');
    }
    if (td === this.#o.trustDomain)
      throw grant(
        'subject token issuer is not trusted',
        `JWT-SVID of our own trust domain "${td}"`,
      );
    const audiences = this.#o.audiences.get(td);
    if (!audiences)
      throw grant(
        'subject token issuer is not trusted',
        `no sts.issuers entry for trust domain "${clip(td)}"`,
      );
    const cached = await this.#bundle(td);
    if (!cached.bundle)
      throw grant('subject token key is unknown', `no bundle for trust domain "${td}"`);
    try {
      const svid = await verifyJwtSvid(token, {
        resolveKey: (keyTd, kid) => (keyTd === td ? keyOf(cached, kid) : null),
        audience: audiences,
        now: nowMs,
        leewaySeconds: LEEWAY_SECONDS,
        maxBytes: MAX_SUBJECT_TOKEN_BYTES,
      });
      // Policies see `iss` = the pseudo-issuer: trust comes from the bundle, not from the
      // JWT-SVID's optional `iss` (which would otherwise be matched against the policy issuer).
      const issuer = FEDERATED_ISSUER_PREFIX + td;
      return { issuer, claims: { ...svid.claims, iss: issuer } };
    } catch (e) {
      const message = e instanceof Error ? e.message : 'invalid';
      throw grant(
        /audience/.test(message)
          ? 'subject token audience is not accepted'
          : /expired/.test(message)
            ? 'subject token has expired'
            : /unknown kid/.test(message)
              ? 'subject token key is unknown'
              : 'subject token is invalid',
        `federated trust domain "${td}": ${message}`,
      );
    }
  }

  async #bundle(td: string): Promise<Cached> {
    const cached = this.#cache.get(td);
    if (cached && this.#o.now() - cached.fetchedAt <= this.#o.maxStalenessMs) return cached;
    let loading = this.#loading.get(td);
    if (!loading) {
      const fetchedAt = this.#o.now();
      loading = this.#o
        .bundle(td)
        .then((bundle) => {
          // A bundle with the same sequence keeps its parsed keys.
          const keys =
            cached && bundle && cached.bundle?.sequence === bundle.sequence
              ? cached.keys
              : new Map<string, KeyObject | null>();
          const c: Cached = { fetchedAt, bundle, keys };
          this.#cache.set(td, c);
          return c;
        })
        .finally(() => this.#loading.delete(td));
      this.#loading.set(td, loading);
    }
    return loading;
  }
}

function keyOf(c: Cached, kid: string): KeyObject | null {
  if (c.keys.has(kid)) return c.keys.get(kid) ?? null;
  const a = c.bundle?.jwtAuthorities.find((k) => k.kid === kid);
  if (!a || a.tainted) return null;
  let key: KeyObject | null = null;
  try {
    key = createPublicKey({ key: Buffer.from(a.publicKeyDer), format: 'der', type: 'spki' });
  } catch {
    key = null;
  }
  // Only kids of the bundle are cached (a bounded set): unknown kids cost a scan, not memory.
  c.keys.set(kid, key);
  return key;
}
