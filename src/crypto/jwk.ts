// Public JWKs for bundles and JWKS endpoints (RFC 7517/7518). Only EC (P-256/384/521) and RSA
// public keys are represented; anything else is reported as unsupported so callers can skip it.
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.ts';

export interface PublicJwk {
  kty: 'EC' | 'RSA';
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

export function spkiToKeyObject(spkiDer: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch {
    throw new InvalidArgumentError('public key DER cannot be parsed');
  }
}

/** The public JWK members of a key (no kid/use/alg: callers add those). */
export function publicJwk(key: KeyObject | Uint8Array): PublicJwk {
  const k = key instanceof Uint8Array ? spkiToKeyObject(key) : key;
  const j = k.export({ format: 'jwk' }) as JsonWebKey;
  if (j.kty === 'EC' && j.crv && j.x && j.y) return { kty: 'EC', crv: j.crv, x: j.x, y: j.y };
  if (j.kty === 'RSA' && j.n && j.e) return { kty: 'RSA', n: j.n, e: j.e };
  throw new InvalidArgumentError(
    `unsupported key type for a JWK: ${k.asymmetricKeyType ?? 'unknown'}`,
  );
}

/** A public KeyObject from an untrusted JWK; only the public members are looked at. */
export function jwkToPublicKey(jwk: Record<string, unknown>): KeyObject {
  const pick = (name: string): string => {
    const v = jwk[name];
    if (typeof v !== 'string' || v === '')
      throw new InvalidArgumentError(`JWK member "${name}" is missing`);
    return v;
  };
  const input =
    jwk.kty === 'EC'
      ? { kty: 'EC', crv: pick('crv'), x: pick('x'), y: pick('y') }
      : { kty: 'RSA', n: pick('n'), e: pick('e') };
  try {
    return createPublicKey({ key: input, format: 'jwk' });
  } catch {
    throw new InvalidArgumentError(`JWK (kty ${String(jwk.kty)}) is not a valid public key`);
  }
}

/** The JWS alg advertised for a key in a plain JWKS (the one Tessera signs with). */
export function jwsAlgForKey(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  const crv = key.asymmetricKeyDetails?.namedCurve;
  if (crv === 'prime256v1') return 'ES256';
  if (crv === 'secp384r1') return 'ES384';
  if (crv === 'secp521r1') return 'ES512';
  return undefined;
}
