// Compact JWS signing with a private key an operator put in the secret store (signed-jwt,
// private_key_jwt). The algorithm follows from the key type, never from config or input.
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { FailedPreconditionError } from '../../../core/errors.ts';

export type JwsAlg = 'RS256' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/** Parses a PEM private key (PKCS#8, or PKCS#1/SEC1). `what` names it in errors. */
export function privateKeyFromPem(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // The parser's message could quote key material: say only what was wrong.
    throw new FailedPreconditionError(`${what} is not a PEM private key`);
  }
  algFor(key, what);
  return key;
}

/** RSA (≥ 2048 bits) → RS256, P-256 → ES256, P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA. */
export function algFor(key: KeyObject, what: string): JwsAlg {
  const d = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((d?.modulusLength ?? 0) >= 2048) return 'RS256';
      throw new FailedPreconditionError(`${what}: RSA keys need at least 2048 bits`);
    case 'ec':
      if (d?.namedCurve === 'prime256v1') return 'ES256';
      if (d?.namedCurve === 'secp384r1') return 'ES384';
      if (d?.namedCurve === 'secp521r1') return 'ES512';
      throw new FailedPreconditionError(`${what}: unsupported EC curve ${d?.namedCurve ?? ''}`);
    case 'ed25519':
      return 'EdDSA';
    default:
      throw new FailedPreconditionError(
        `${what}: unsupported key type ${key.asymmetricKeyType ?? 'unknown'} (RSA, EC P-256/P-384/P-521, Ed25519)`,
      );
  }
}

const hashOf: Record<JwsAlg, string | null> = {
  RS256: 'sha256',
  ES256: 'sha256',
  ES384: 'sha384',
  ES512: 'sha512',
  EdDSA: null,
};

const b64json = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');

/** Signs `claims`; the header is {alg, typ: "JWT", ...extra}, alg from the key. */
export function signJws(
  key: KeyObject,
  claims: Readonly<Record<string, unknown>>,
  extraHeader: Readonly<Record<string, string>> = {},
): string {
  const alg = algFor(key, 'signing key');
  const input = `${b64json({ ...extraHeader, alg, typ: 'JWT' })}.${b64json(claims)}`;
  const sig = sign(hashOf[alg], Buffer.from(input, 'latin1'), {
    key,
    dsaEncoding: 'ieee-p1363',
  });
  return `${input}.${sig.toString('base64url')}`;
}
