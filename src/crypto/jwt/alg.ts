// JWS algorithms for JWT-SVIDs (JWT-SVID spec §3): what we sign with per key type, what we accept,
// and the rule that the verification key, never the token header, decides the algorithm family.
import { constants, type KeyObject } from 'node:crypto';
import type { KeyType } from '../../core/authority.ts';

export type JwtAlg =
  'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512' | 'PS256' | 'PS384' | 'PS512';

export const allowedJwtAlgs: readonly JwtAlg[] = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
];

export function isAllowedJwtAlg(v: unknown): v is JwtAlg {
  return typeof v === 'string' && (allowedJwtAlgs as readonly string[]).includes(v);
}

/** SPIRE's choice (cryptoutil/keys.go): P-256 → ES256, P-384 → ES384, RSA → RS256. */
export function jwtAlgFor(type: KeyType): 'ES256' | 'ES384' | 'RS256' {
  if (type === 'ec-p256') return 'ES256';
  if (type === 'ec-p384') return 'ES384';
  return 'RS256';
}

export interface JwsVerifyParams {
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly options: {
    key: KeyObject;
    dsaEncoding?: 'ieee-p1363';
    padding?: number;
    saltLength?: number;
  };
  /** Exact signature length for ECDSA (r||s), else null. */
  readonly sigLength: number | null;
}

const ecCurveFor: Record<string, string> = {
  ES256: 'prime256v1',
  ES384: 'secp384r1',
  ES512: 'secp521r1',
};
const ecSigLength: Record<string, number> = { ES256: 64, ES384: 96, ES512: 132 };

/**
 * How to verify `alg` with `key`, or null when they do not belong together (an ES384 header on a
 * P-256 key, an RS256 header on an EC key, ...): that is alg confusion and the token is rejected.
 */
export function jwsVerifyParams(alg: JwtAlg, key: KeyObject): JwsVerifyParams | null {
  const hash = `sha${alg.slice(2)}` as 'sha256' | 'sha384' | 'sha512';
  if (key.type !== 'public') return null;
  if (alg.startsWith('ES')) {
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== ecCurveFor[alg])
      return null;
    return {
      hash,
      options: { key, dsaEncoding: 'ieee-p1363' },
      sigLength: ecSigLength[alg] ?? null,
    };
  }
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
    return null;
  if (alg.startsWith('RS')) return { hash, options: { key }, sigLength: null };
  // RFC 7518 §3.5: PSS salt length equals the hash output length.
  const saltLength = Number(alg.slice(2)) / 8;
  return {
    hash,
    options: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength },
    sigLength: null,
  };
}
