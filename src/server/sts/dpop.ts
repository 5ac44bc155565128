// RFC 9449 DPoP proofs at the token endpoint. A request may carry one `DPoP` header: a compact JWS
// with header `typ: dpop+jwt`, an asymmetric `alg` that must fit the key type of the public `jwk`
// in the same header (private members refused), signed by that key, and claims `jti` (bounded),
// `htm` = POST, `htu` = our token endpoint (compared without query and fragment, after URL
// normalization), `iat` within ±DPOP_WINDOW_SECONDS. The proof's `alg` never picks the key or the
// algorithm family: the jwk's type decides, as for subject tokens.
//
// verifyDpopProof only checks the proof itself; single use (`jti` replay) is checked afterwards
// through the database (DpopProofStore.record with dpopReplayKey), so a proof replayed to another
// server sharing the database is refused too. Every failure is an OAuthError `invalid_dpop_proof`.
import { createHash } from 'node:crypto';
import { jwkToPublicKey } from '../../crypto/jwk.ts';
import { allowedJwtAlgs, isAllowedJwtAlg, jwsVerifyParams } from '../../crypto/jwt/alg.ts';
import { OAuthError } from './errors.ts';
import { clip } from './form.ts';
import { decodeJws, verifyJws } from './jws.ts';

/** Longest accepted DPoP header value, bytes. */
export const MAX_DPOP_PROOF_BYTES = 8 * 1024;
/** Longest accepted `jti`. */
export const MAX_DPOP_JTI_LENGTH = 256;
/** How far `iat` may be from the server clock, either way. */
export const DPOP_WINDOW_SECONDS = 60;
/** The algorithms a proof may use (advertised as dpop_signing_alg_values_supported). */
export const DPOP_ALGS: readonly string[] = allowedJwtAlgs;

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key, base64url. */
  readonly jkt: string;
  readonly jti: string;
  /** Epoch ms after which the proof can no longer pass the `iat` check (replay record expiry). */
  readonly expiresAt: number;
}

const bad = (description: string, reason?: string) =>
  new OAuthError('invalid_dpop_proof', description, `DPoP: ${reason ?? description}`);

/**
 * Verifies the DPoP header values of one token request (`headers` as received: more than one is
 * refused). `tokenEndpoint` is the server's own token endpoint URL, from its configured issuer.
 */
export function verifyDpopProof(
  headers: readonly string[],
  tokenEndpoint: string,
  nowMs: number,
): VerifiedDpopProof {
  if (headers.length !== 1) throw bad('exactly one DPoP header is allowed');
  const proof = headers[0] ?? '';
  if (proof.length > MAX_DPOP_PROOF_BYTES)
    throw bad(`DPoP proof is larger than ${MAX_DPOP_PROOF_BYTES} bytes`);
  const jws = decodeJws(proof);
  if (!jws) throw bad('DPoP proof is not a compact JWS');
  const { header, claims } = jws;

  if (header.typ !== 'dpop+jwt') throw bad('DPoP proof typ must be dpop+jwt');
  const alg = header.alg;
  if (!isAllowedJwtAlg(alg))
    throw bad('DPoP proof algorithm is not allowed', `alg "${clip(String(alg))}" not allowed`);
  if (header.crit !== undefined) throw bad('DPoP proof has unsupported critical headers');
  const jwk = header.jwk;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk))
    throw bad('DPoP proof has no jwk header');
  const j = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in j))
    throw bad('DPoP proof jwk must be a public key', 'jwk contains private key members');
  if (j.kty !== 'EC' && j.kty !== 'RSA')
    throw bad('DPoP proof jwk type is not supported', `kty "${clip(String(j.kty))}"`);
  let key;
  try {
    key = jwkToPublicKey(j);
  } catch {
    throw bad('DPoP proof jwk is not a valid public key');
  }
  if (!jwsVerifyParams(alg, key))
    throw bad(
      'DPoP proof algorithm does not match its key',
      `alg "${alg}" does not fit the jwk (kty ${String(j.kty)})`,
    );
  if (!verifyJws(jws, alg, key)) throw bad('DPoP proof signature is invalid');

  const { jti, htm, htu, iat } = claims;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_DPOP_JTI_LENGTH)
    throw bad(`DPoP proof jti must be 1..${MAX_DPOP_JTI_LENGTH} characters`);
  if (htm !== 'POST') throw bad('DPoP proof htm does not match', `htm "${clip(String(htm))}"`);
  if (typeof htu !== 'string' || !sameTarget(htu, tokenEndpoint))
    throw bad('DPoP proof htu does not match the token endpoint', `htu "${clip(String(htu))}"`);
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw bad('DPoP proof has no iat');
  if (Math.abs(nowMs - iat * 1000) > DPOP_WINDOW_SECONDS * 1000)
    throw bad('DPoP proof iat is outside the accepted window', `iat ${iat} at ${nowMs}`);
  return {
    jkt: jwkThumbprint(j),
    jti,
    // One extra window: servers sharing the database may disagree a little about the time.
    expiresAt: Math.ceil(iat * 1000) + 2 * DPOP_WINDOW_SECONDS * 1000,
  };
}

/**
 * The key under which a proof's single use is recorded: jti scoped to the proof key and the
 * endpoint, hashed to a fixed length (one client cannot use up another's jti values).
 */
export function dpopReplayKey(tokenEndpoint: string, proof: VerifiedDpopProof): string {
  return createHash('sha256')
    .update(`${tokenEndpoint}\n${proof.jkt}\n${proof.jti}`)
    .digest('base64url');
}

/** RFC 7638 JWK thumbprint (SHA-256): the required members in lexicographic order, no spaces. */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  const members =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y }
      : { e: jwk.e, kty: 'RSA', n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** RFC 9449 §4.3: the htu matches the request URI ignoring query and fragment (RFC 3986 §6). */
function sameTarget(htu: string, endpoint: string): boolean {
  let a: URL;
  let b: URL;
  try {
    a = new URL(htu);
    b = new URL(endpoint);
  } catch {
    return false;
  }
  if (a.protocol !== 'https:' && a.protocol !== 'http:') return false;
  if (a.username !== '' || a.password !== '') return false;
  return a.origin === b.origin && a.pathname === b.pathname;
}
