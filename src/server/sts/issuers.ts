// The external OIDC issuers whose tokens may be exchanged, and subject-token verification.
// Keys come from a static JWKS file per issuer, read at start. The key is resolved by `kid` from
// the issuer named by `iss` (exact string), and the algorithm is checked against the key type —
// the token's `alg` header alone never decides anything (no `none`, no HS*).
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import { InvalidArgumentError } from '../../core/errors.ts';
import { jwkToPublicKey } from '../../crypto/jwk.ts';
import { OAuthError } from './errors.ts';
import { clip } from './form.ts';

export const MAX_SUBJECT_TOKEN_BYTES = 8 * 1024;
export const LEEWAY_SECONDS = 60;

export interface IssuerConfig {
  readonly issuer: string;
  /** Absent only for a federated trust domain (`spiffe://<td>`, see federated.ts). */
  readonly jwks_file?: string | undefined;
  readonly audiences: readonly string[];
}

export interface TrustedIssuer {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly keys: ReadonlyMap<string, { key: KeyObject; algs: readonly string[] }>;
}

/** The algorithms a key may verify: decided by its type (and narrowed by the JWK's `alg`). */
export function algsForKey(key: KeyObject): string[] {
  if (key.asymmetricKeyType === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return [];
    return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
  }
  if (key.asymmetricKeyType === 'ec') {
    const crv = key.asymmetricKeyDetails?.namedCurve;
    if (crv === 'prime256v1') return ['ES256'];
    if (crv === 'secp384r1') return ['ES384'];
    if (crv === 'secp521r1') return ['ES512'];
  }
  return [];
}

export function loadIssuer(c: IssuerConfig, where: string): TrustedIssuer {
  if (c.jwks_file === undefined)
    throw new InvalidArgumentError(`config: ${where}.jwks_file: required for an https issuer`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(c.jwks_file, 'utf8'));
  } catch (e) {
    throw new InvalidArgumentError(
      `config: ${where}.jwks_file: cannot read a JWKS from "${c.jwks_file}": ${(e as Error).message}`,
    );
  }
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list))
    throw new InvalidArgumentError(`config: ${where}.jwks_file: not a JWKS (no "keys" array)`);
  const keys = new Map<string, { key: KeyObject; algs: readonly string[] }>();
  for (const [i, raw] of list.entries()) {
    const jwk = raw as Record<string, unknown>;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') continue;
    if (typeof jwk.kid !== 'string' || jwk.kid === '')
      throw new InvalidArgumentError(`config: ${where}.jwks_file: keys[${i}] has no kid`);
    if (keys.has(jwk.kid))
      throw new InvalidArgumentError(`config: ${where}.jwks_file: kid "${jwk.kid}" is repeated`);
    const key = jwkToPublicKey(jwk);
    let algs = algsForKey(key);
    if (typeof jwk.alg === 'string') algs = algs.filter((a) => a === jwk.alg);
    if (algs.length === 0)
      throw new InvalidArgumentError(
        `config: ${where}.jwks_file: kid "${jwk.kid}": unsupported key or alg`,
      );
    keys.set(jwk.kid, { key, algs });
  }
  return { issuer: c.issuer, audiences: [...c.audiences], keys };
}

export interface VerifiedSubjectToken {
  readonly issuer: string;
  readonly claims: Record<string, unknown>;
}

const grant = (description: string, reason?: string) =>
  new OAuthError('invalid_grant', description, reason);

/** Verifies a subject token against the registered issuers; every failure is invalid_grant. */
export async function verifySubjectToken(
  token: string,
  issuers: ReadonlyMap<string, TrustedIssuer>,
  nowMs: number,
): Promise<VerifiedSubjectToken> {
  let header: jose.ProtectedHeaderParameters;
  let unverified: jose.JWTPayload;
  try {
    header = jose.decodeProtectedHeader(token);
    unverified = jose.decodeJwt(token);
  } catch {
    throw grant('subject token is not a well-formed JWT');
  }
  const iss = unverified.iss;
  const issuer = typeof iss === 'string' ? issuers.get(iss) : undefined;
  if (!issuer || typeof iss !== 'string')
    throw grant(
      'subject token issuer is not trusted',
      `unregistered issuer "${clip(String(iss))}"`,
    );
  if (typeof header.alg !== 'string' || header.alg === 'none' || header.alg.startsWith('HS'))
    throw grant('subject token algorithm is not allowed', `alg "${clip(String(header.alg))}"`);
  if (typeof header.kid !== 'string' || header.kid === '') throw grant('subject token has no kid');
  const entry = issuer.keys.get(header.kid);
  if (!entry) throw grant('subject token key is unknown', `unknown kid "${clip(header.kid)}"`);
  if (!entry.algs.includes(header.alg))
    throw grant(
      'subject token algorithm is not allowed',
      `alg "${clip(header.alg)}" does not match the key for kid "${clip(header.kid)}"`,
    );
  let payload: jose.JWTPayload;
  try {
    ({ payload } = await jose.jwtVerify(token, entry.key, {
      algorithms: [...entry.algs],
      issuer: issuer.issuer,
      audience: [...issuer.audiences],
      requiredClaims: ['exp'],
      clockTolerance: LEEWAY_SECONDS,
      currentDate: new Date(nowMs),
    }));
  } catch (e) {
    throw joseFailure(e);
  }
  if (typeof payload.iat === 'number' && payload.iat > nowMs / 1000 + LEEWAY_SECONDS)
    throw grant('subject token was issued in the future', 'iat in the future');
  return { issuer: issuer.issuer, claims: payload as Record<string, unknown> };
}

function joseFailure(e: unknown): OAuthError {
  if (e instanceof jose.errors.JWTExpired) return grant('subject token has expired');
  if (e instanceof jose.errors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return grant('subject token audience is not accepted');
    if (e.claim === 'nbf') return grant('subject token is not yet valid');
    return grant(`subject token claim "${clip(e.claim)}" is invalid`, e.message);
  }
  if (e instanceof jose.errors.JWSSignatureVerificationFailed)
    return grant('subject token signature is invalid');
  return grant('subject token is invalid', e instanceof Error ? clip(e.message) : 'invalid');
}
