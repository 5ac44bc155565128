// JWT-SVID verification for services that receive tokens: the JWT-SVID spec rules (crypto/jwt/
// verify.ts) with keys from a JwtSource (kept current by the Workload API) or a fixed JWKS set,
// the expected audience, and optionally an authorizer for the subject.
import type { KeyObject } from 'node:crypto';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { verifyJwtSvid, type VerifiedJwtSvid } from '../../crypto/jwt/verify.ts';
import type { Authorizer } from './authorizer.ts';
import { parseJwks } from './parse.ts';
import type { JwtBundle, JwtBundleSource } from './types.ts';

export type { VerifiedJwtSvid } from '../../crypto/jwt/verify.ts';

export interface JwksDocument {
  readonly keys: readonly unknown[];
}

/** Fixed JWT bundles: trust domain (name or "spiffe://" ID) → JWKS (JSON text, bytes or object). */
export function staticJwtBundles(
  bundles: Readonly<Record<string, string | Uint8Array | JwksDocument>>,
): JwtBundleSource {
  const map = new Map<string, JwtBundle>();
  for (const [td, jwks] of Object.entries(bundles)) {
    const json =
      typeof jwks === 'string' || jwks instanceof Uint8Array ? jwks : JSON.stringify(jwks);
    map.set(TrustDomain.parse(td).name, parseJwks(json, `JWKS of "${td}"`));
  }
  return {
    getJwtBundleForTrustDomain: (td) => map.get(TrustDomain.parse(td).name),
  };
}

export interface JwtSvidVerifierOptions {
  readonly bundles: JwtBundleSource;
  /** The audience this service expects (it must be among the token's `aud`). */
  readonly audience: string;
  /** Applied to the subject after the signature and claims check. */
  readonly authorizer?: Authorizer;
  /** Epoch ms (default Date.now). */
  readonly clock?: () => number;
  /** Leeway for exp/nbf/iat in seconds (default 30). */
  readonly leewaySeconds?: number;
}

export class JwtSvidVerifier {
  readonly audience: string;
  readonly #o: JwtSvidVerifierOptions;

  constructor(o: JwtSvidVerifierOptions) {
    if (typeof o.audience !== 'string' || o.audience === '') {
      throw new TypeError('JwtSvidVerifier needs a non-empty audience');
    }
    this.audience = o.audience;
    this.#o = o;
  }

  /**
   * Verifies a JWT-SVID. Throws InvalidArgumentError with the reason when the token is not
   * valid (bad signature, unknown kid or trust domain, wrong aud, expired, ...), or the
   * authorizer's error (PermissionDeniedError) when the subject is refused.
   */
  async verify(token: string): Promise<VerifiedJwtSvid> {
    const bundles = this.#o.bundles;
    const v = await verifyJwtSvid(token, {
      resolveKey: (td: string, kid: string): KeyObject | undefined =>
        bundles.getJwtBundleForTrustDomain(td)?.get(kid),
      audience: this.audience,
      now: (this.#o.clock ?? Date.now)(),
      ...(this.#o.leewaySeconds !== undefined ? { leewaySeconds: this.#o.leewaySeconds } : {}),
    });
    const refused = this.#o.authorizer?.(v.id, []);
    if (refused) throw refused;
    return v;
  }
}
