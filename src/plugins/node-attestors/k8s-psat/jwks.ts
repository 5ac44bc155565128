// The service-account issuer keys of a cluster, from a JWK Set (Kubernetes publishes it at
// /openid/v1/jwks). Kubernetes keys carry a kid; signing keys only (use "sig" or absent).
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { jwkToPublicKey } from '../../../crypto/jwk.ts';

export const MAX_JWKS_KEYS = 100;
export const MAX_JWKS_BYTES = 256 * 1024;

/** Keys by kid. */
export type PsatKeys = ReadonlyMap<string, KeyObject>;

/** Parses a JWK Set; `where` prefixes every error (the config key or URL it came from). */
export function parsePsatJwks(text: string, where: string): PsatKeys {
  if (text.length > MAX_JWKS_BYTES)
    throw new InvalidArgumentError(`${where}: JWKS larger than ${MAX_JWKS_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`${where}: not JSON`);
  }
  return psatKeysOf(doc, where);
}

export function psatKeysOf(doc: unknown, where: string): PsatKeys {
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list))
    throw new InvalidArgumentError(`${where}: not a JWKS (no "keys" array)`);
  if (list.length > MAX_JWKS_KEYS)
    throw new InvalidArgumentError(`${where}: more than ${MAX_JWKS_KEYS} keys`);
  const keys = new Map<string, KeyObject>();
  for (const [i, raw] of list.entries()) {
    if (typeof raw !== 'object' || raw === null)
      throw new InvalidArgumentError(`${where}: keys[${i}] is not a JWK`);
    const jwk = raw as Record<string, unknown>;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') continue;
    const kid = typeof jwk.kid === 'string' ? jwk.kid : '';
    if (kid === '' || kid.length > 256)
      throw new InvalidArgumentError(`${where}: keys[${i}] has no kid`);
    if (keys.has(kid)) throw new InvalidArgumentError(`${where}: kid "${kid}" is repeated`);
    try {
      keys.set(kid, jwkToPublicKey(jwk));
    } catch (e) {
      throw new InvalidArgumentError(`${where}: keys[${i}]: ${(e as Error).message}`);
    }
  }
  if (keys.size === 0) throw new InvalidArgumentError(`${where}: no signing keys`);
  return keys;
}
