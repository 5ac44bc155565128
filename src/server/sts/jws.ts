// Compact JWS handling shared by the token endpoint's verifiers (subject tokens, DPoP proofs):
// split and decode once, and verify with node:crypto synchronously. The algorithm family always
// comes from the key (crypto/jwt/alg.ts jwsVerifyParams), never from the header alone.
import { verify, type KeyObject } from 'node:crypto';
import { ecdsaP1363ToDer } from '../../crypto/ecdsa-signature.ts';
import { isAllowedJwtAlg, jwsVerifyParams } from '../../crypto/jwt/alg.ts';

const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;

export interface DecodedJws {
  /** The signing input `<header>.<payload>` as sent. */
  readonly input: string;
  readonly signature: string;
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

/** Splits and decodes a compact JWS (not verified); undefined when malformed. */
export function decodeJws(token: string): DecodedJws | undefined {
  const dot1 = token.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
  if (dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) return undefined;
  const h = token.slice(0, dot1);
  const p = token.slice(dot1 + 1, dot2);
  const s = token.slice(dot2 + 1);
  // An empty signature is let through decoding so that `alg: none` is refused by name.
  if (!SEGMENT_RE.test(h) || !SEGMENT_RE.test(p) || (s !== '' && !SEGMENT_RE.test(s)))
    return undefined;
  const header = decodeJson(h);
  const claims = header && decodeJson(p);
  if (!header || !claims) return undefined;
  return { input: token.slice(0, dot2), signature: s, header, claims };
}

/**
 * Verifies the signature of a decoded JWS with `key` under `alg`; false when the alg is not an
 * allowed asymmetric one, does not fit the key, or the signature is wrong.
 */
export function verifyJws(jws: DecodedJws, alg: unknown, key: KeyObject): boolean {
  if (!isAllowedJwtAlg(alg)) return false;
  const params = jwsVerifyParams(alg, key);
  if (!params) return false;
  const sig = Buffer.from(jws.signature, 'base64url');
  if (params.sigLength !== null && sig.length !== params.sigLength) return false;
  try {
    // ECDSA: r||s re-encoded to DER here and verified without dsaEncoding, which OpenSSL 3 does
    // ~1.5× faster (see crypto/ecdsa-signature.ts); the length was checked exactly above.
    return params.sigLength !== null
      ? verify(params.hash, Buffer.from(jws.input, 'latin1'), key, ecdsaP1363ToDer(sig))
      : verify(params.hash, Buffer.from(jws.input, 'latin1'), params.options, sig);
  } catch {
    return false;
  }
}

function decodeJson(segment: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
