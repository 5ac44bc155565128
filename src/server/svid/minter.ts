// Every signature the server makes for others: X.509-SVIDs, JWT-SVIDs and RFC 9068 access tokens
// (the token exchange's output), with the active authorities. TTLs are capped at the signing
// authority's remaining life, so no SVID outlives the key that vouches for it.
import type { Clock } from '../../core/clock.ts';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.ts';
import { parseLeafId } from '../../core/spiffe-id.ts';
import { randomBytes, type KeyObject } from 'node:crypto';
import { issueX509Svid } from '../../crypto/x509/leaf.ts';
import { signJwtSvid } from '../../crypto/jwt/sign.ts';
import { signJwt } from '../../crypto/jwt/sign-claims.ts';
import { DOCUMENT_CLAIM } from '../../core/disclosure.ts';
import type { AuthorityManager } from '../authority/authority-manager.ts';

/** Leaves start slightly in the past to absorb clock skew (SPIRE uses 10 s). */
export const NOT_BEFORE_SKEW_MS = 10_000;
export const MAX_AUDIENCES = 32;
export const MAX_AUDIENCE_BYTES = 1024;
/** The JOSE `typ` of identity documents. */
export const IDENTITY_DOCUMENT_TYP = 'tessera-id+jwt';

export interface X509Svid {
  readonly spiffeId: string;
  /** Leaf first, then the CA chain. */
  readonly chainDer: Uint8Array[];
  readonly serialHex: string;
  readonly expiresAt: number;
}

export interface JwtSvid {
  readonly spiffeId: string;
  readonly token: string;
  readonly expiresAt: number;
}

/** An RFC 9068 access token to sign (what the trust policy decided; checked by the caller). */
export interface AccessTokenRequest {
  readonly subject: string;
  readonly audience: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** RFC 9449: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`). */
  readonly jkt?: string | undefined;
  readonly ttlMs: number;
}

export interface AccessToken {
  readonly token: string;
  readonly expiresAt: number;
  /** The clock reading the token was signed at (`iat`, in ms). */
  readonly issuedAt: number;
}

export interface MinterOptions {
  authorities: AuthorityManager;
  clock: Clock;
  issuer: string;
}

export class Minter {
  readonly #o: MinterOptions;
  constructor(o: MinterOptions) {
    this.#o = o;
  }

  async x509(
    spiffeId: string,
    /** A KeyObject, or SPKI DER already validated (as parseCsr returns it). */
    publicKey: KeyObject | Uint8Array,
    ttlMs: number,
    dnsNames: readonly string[],
  ): Promise<X509Svid> {
    const { authority, key, chainDer } = this.#o.authorities.activeX509();
    const now = this.#o.clock.now();
    const expiresAt = Math.min(now + ttlMs, authority.notAfter);
    const ca = chainDer[0];
    if (!ca) throw new Error('active x509 authority has no certificate');
    const leaf = await issueX509Svid({
      ca: { certDer: ca, key },
      subjectPublicKey: publicKey,
      spiffeId,
      dnsNames,
      notBefore: now - NOT_BEFORE_SKEW_MS,
      notAfter: expiresAt,
    });
    return { spiffeId, chainDer: [leaf.der, ...chainDer], serialHex: leaf.serialHex, expiresAt };
  }

  async jwt(spiffeId: string, audience: readonly string[], ttlMs: number): Promise<JwtSvid> {
    parseLeafId(spiffeId, 'spiffe_id');
    checkAudience(audience);
    const { authority, key } = this.#o.authorities.activeJwt();
    const now = this.#o.clock.now();
    const exp = Math.floor(Math.min(now + ttlMs, authority.notAfter) / 1000);
    if (exp <= Math.floor(now / 1000)) {
      throw new FailedPreconditionError(
        'the active JWT authority expires within a second: rotate it, or use a TTL of at least 1s',
      );
    }
    const token = await signJwtSvid({
      key,
      kid: authority.id,
      claims: {
        sub: spiffeId,
        aud: [...audience],
        exp,
        iat: Math.floor(now / 1000),
        ...(this.#o.issuer ? { iss: this.#o.issuer } : {}),
      },
    });
    return { spiffeId, token, expiresAt: exp * 1000 };
  }

  /**
   * A signed identity document (docs/identity-document.md): a JWT-SVID's claims plus the
   * disclosed attributes under `tessera.attributes`, typed `tessera-id+jwt` so a verifier can
   * tell it from a plain JWT-SVID. Signed by the active JWT authority (the JWKS keys).
   */
  async identityDocument(
    spiffeId: string,
    audience: readonly string[],
    ttlMs: number,
    attributes: Readonly<Record<string, unknown>>,
  ): Promise<JwtSvid> {
    parseLeafId(spiffeId, 'spiffe_id');
    checkAudience(audience);
    const { authority, key } = this.#o.authorities.activeJwt();
    const now = this.#o.clock.now();
    const iat = Math.floor(now / 1000);
    const exp = Math.floor(Math.min(now + ttlMs, authority.notAfter) / 1000);
    if (exp <= iat) {
      throw new FailedPreconditionError(
        'the active JWT authority expires within a second: rotate it',
      );
    }
    const token = await signJwt({
      key,
      kid: authority.id,
      typ: IDENTITY_DOCUMENT_TYP,
      claims: {
        ...(this.#o.issuer ? { iss: this.#o.issuer } : {}),
        sub: spiffeId,
        aud: [...audience],
        iat,
        exp,
        jti: randomBytes(16).toString('base64url'),
        [DOCUMENT_CLAIM]: { attributes },
      },
    });
    return { spiffeId, token, expiresAt: exp * 1000 };
  }

  /** An RFC 9068 access token (`typ: at+jwt`), signed by the active JWT authority. */
  async accessToken(r: AccessTokenRequest): Promise<AccessToken> {
    const { authority, key } = this.#o.authorities.activeJwt();
    const now = this.#o.clock.now();
    const exp = Math.floor(Math.min(now + r.ttlMs, authority.notAfter) / 1000);
    const iat = Math.floor(now / 1000);
    if (exp <= iat) throw new Error('the active JWT authority is about to expire');
    const token = await signJwt({
      key,
      kid: authority.id,
      typ: 'at+jwt',
      claims: {
        iss: this.#o.issuer,
        sub: r.subject,
        aud: r.audience,
        client_id: r.clientId,
        ...(r.scopes.length > 0 ? { scope: r.scopes.join(' ') } : {}),
        jti: randomBytes(16).toString('base64url'),
        iat,
        exp,
        ...(r.jkt !== undefined ? { cnf: { jkt: r.jkt } } : {}),
      },
    });
    return { token, expiresAt: exp * 1000, issuedAt: now };
  }
}

export function checkAudience(audience: readonly string[]): void {
  if (audience.length === 0)
    throw new InvalidArgumentError('audience: at least one audience is required');
  if (audience.length > MAX_AUDIENCES)
    throw new InvalidArgumentError(`audience: at most ${MAX_AUDIENCES} values`);
  for (const a of audience) {
    if (a === '' || Buffer.byteLength(a) > MAX_AUDIENCE_BYTES) {
      throw new InvalidArgumentError(`audience: each value must be 1..${MAX_AUDIENCE_BYTES} bytes`);
    }
  }
}
