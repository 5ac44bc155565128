// The external OIDC issuers whose tokens may be exchanged, and subject-token verification.
// Keys come from a static JWKS (a file named in the config, or a document registered through the
// admin API) or from the issuer's OIDC discovery document (discovery.ts). The key is resolved by `kid` from
// the issuer named by `iss` (exact string), and the algorithm is checked against the key type —
// the token's `alg` header alone never decides anything (no `none`, no HS*).
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';
import { jwkToPublicKey } from '../../crypto/jwk.ts';
import { OAuthError } from './errors.ts';
import { clip } from './form.ts';
import { decodeJws, verifyJws, type DecodedJws } from './jws.ts';

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
  /** The keys at hand (for a discovery issuer: the cached ones). */
  readonly keys: ReadonlyMap<string, { key: KeyObject; algs: readonly string[] }>;
  /**
   * Discovery issuers: called when `kid` is not among `keys`; may refresh the JWKS (rate-limited)
   * and throw an OAuthError explaining why the keys are unavailable.
   */
  readonly resolveKey?: (
    kid: string,
  ) => Promise<{ key: KeyObject; algs: readonly string[] } | undefined>;
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

export type IssuerKeys = ReadonlyMap<string, { key: KeyObject; algs: readonly string[] }>;

/** The contents of the config's `jwks_file`s by path, read by the composition root. */
export type JwksFiles = ReadonlyMap<string, string>;

export function loadIssuer(c: IssuerConfig, where: string, files: JwksFiles): TrustedIssuer {
  if (c.jwks_file === undefined)
    throw new InvalidArgumentError(`config: ${where}.jwks_file: required for an https issuer`);
  const text = files.get(c.jwks_file);
  // A programmer's error: the composition root reads every jwks_file of the config.
  if (text === undefined) throw new TypeError(`${where}.jwks_file: "${c.jwks_file}" was not read`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(
      `config: ${where}.jwks_file: cannot read a JWKS from "${c.jwks_file}": ${(e as Error).message}`,
    );
  }
  return {
    issuer: c.issuer,
    audiences: [...c.audiences],
    keys: parseJwks(doc, `config: ${where}.jwks_file`),
  };
}

/** Maximum keys kept from one JWK Set (issuers publish a handful). */
export const MAX_JWKS_KEYS = 100;

/**
 * The usable signing keys of a JWK Set, by kid. Keys for other uses or of other types are
 * skipped; a usable key without a kid, a repeated kid or an unsupported key is an error
 * prefixed with `where`.
 */
export function parseJwks(doc: unknown, where: string): IssuerKeys {
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list))
    throw new InvalidArgumentError(`${where}: not a JWKS (no "keys" array)`);
  if (list.length > MAX_JWKS_KEYS)
    throw new InvalidArgumentError(`${where}: more than ${MAX_JWKS_KEYS} keys`);
  const keys = new Map<string, { key: KeyObject; algs: readonly string[] }>();
  for (const [i, raw] of list.entries()) {
    if (typeof raw !== 'object' || raw === null)
      throw new InvalidArgumentError(`${where}: keys[${i}] is not a JWK`);
    const jwk = raw as Record<string, unknown>;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') continue;
    if (typeof jwk.kid !== 'string' || jwk.kid === '')
      throw new InvalidArgumentError(`${where}: keys[${i}] has no kid`);
    if (keys.has(jwk.kid))
      throw new InvalidArgumentError(`${where}: kid "${clip(jwk.kid)}" is repeated`);
    let key: KeyObject;
    try {
      key = jwkToPublicKey(jwk);
    } catch (e) {
      throw new InvalidArgumentError(
        `${where}: kid "${clip(jwk.kid)}": not a valid public key: ${(e as Error).message}`,
      );
    }
    let algs = algsForKey(key);
    if (typeof jwk.alg === 'string') algs = algs.filter((a) => a === jwk.alg);
    if (algs.length === 0)
      throw new InvalidArgumentError(`${where}: kid "${clip(jwk.kid)}": unsupported key or alg`);
    keys.set(jwk.kid, { key, algs });
  }
  return keys;
}

export interface VerifiedSubjectToken {
  readonly issuer: string;
  readonly claims: Record<string, unknown>;
}

const grant = (description: string, reason?: string) =>
  new OAuthError('invalid_grant', description, reason);

/**
 * Verifies a subject token against the registered issuers; every failure is invalid_grant.
 * `decoded` is the token already split and decoded by the caller (to avoid doing it twice).
 * Verification is synchronous node:crypto (jws.ts); claims are checked here as RFC 7519 says.
 */
export async function verifySubjectToken(
  token: string,
  issuers: Pick<ReadonlyMap<string, TrustedIssuer>, 'get'>,
  nowMs: number,
  decoded: DecodedJws | undefined = decodeJws(token),
): Promise<VerifiedSubjectToken> {
  if (!decoded) throw grant('subject token is not a well-formed JWT');
  const { header, claims } = decoded;
  const iss = claims.iss;
  const issuer = typeof iss === 'string' ? issuers.get(iss) : undefined;
  if (!issuer || typeof iss !== 'string')
    throw grant(
      'subject token issuer is not trusted',
      `unregistered issuer "${clip(String(iss))}"`,
    );
  if (typeof header.alg !== 'string' || header.alg === 'none' || header.alg.startsWith('HS'))
    throw grant('subject token algorithm is not allowed', `alg "${clip(String(header.alg))}"`);
  if (typeof header.kid !== 'string' || header.kid === '') throw grant('subject token has no kid');
  const entry = issuer.keys.get(header.kid) ?? (await issuer.resolveKey?.(header.kid));
  if (!entry) throw grant('subject token key is unknown', `unknown kid "${clip(header.kid)}"`);
  if (!entry.algs.includes(header.alg))
    throw grant(
      'subject token algorithm is not allowed',
      `alg "${clip(header.alg)}" does not match the key for kid "${clip(header.kid)}"`,
    );
  if (header.crit !== undefined)
    throw grant('subject token is invalid', 'unsupported "crit" header');
  if (!verifyJws(decoded, header.alg, entry.key)) throw grant('subject token signature is invalid');
  const now = nowMs / 1000;
  const aud = claims.aud;
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!auds.some((a) => typeof a === 'string' && issuer.audiences.includes(a)))
    throw grant('subject token audience is not accepted');
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp))
    throw grant('subject token claim "exp" is invalid', 'missing or malformed "exp"');
  if (claims.exp <= now - LEEWAY_SECONDS) throw grant('subject token has expired');
  if (claims.nbf !== undefined) {
    if (typeof claims.nbf !== 'number') throw grant('subject token claim "nbf" is invalid');
    if (claims.nbf > now + LEEWAY_SECONDS) throw grant('subject token is not yet valid');
  }
  if (claims.iat !== undefined) {
    if (typeof claims.iat !== 'number') throw grant('subject token claim "iat" is invalid');
    if (claims.iat > now + LEEWAY_SECONDS)
      throw grant('subject token was issued in the future', 'iat in the future');
  }
  return { issuer: issuer.issuer, claims };
}
