// Bundle encodings: the SPIFFE bundle (a JWK Set with use x509-svid / jwt-svid, spiffe_sequence,
// spiffe_refresh_hint; spec SPIFFE_Trust_Domain_and_Bundle §4), the plain RFC 7517 JWKS the
// Workload API and OIDC discovery serve, PEM, and concatenated DER (Workload API X.509 bundles).
import { X509Certificate } from 'node:crypto';
import type { Bundle, JwtAuthorityKey } from '../core/bundle.ts';
import { withX509Authority } from '../core/bundle.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import { TrustDomain } from '../core/spiffe-id.ts';
import { jwkToPublicKey, jwsAlgForKey, publicJwk, spkiToKeyObject, type PublicJwk } from './jwk.ts';
import { derToPem } from './x509/pem.ts';

export const DEFAULT_MAX_BUNDLE_BYTES = 1024 * 1024;
const DEFAULT_REFRESH_HINT = 300;

export interface SpiffeBundleJson {
  keys: Array<PublicJwk & { use: 'x509-svid' | 'jwt-svid'; kid?: string; x5c?: string[] }>;
  spiffe_sequence: number;
  spiffe_refresh_hint: number;
}

export function bundleToSpiffeJson(bundle: Bundle): SpiffeBundleJson {
  const x509 = bundle.x509Authorities.map((a) => ({
    use: 'x509-svid' as const,
    ...publicJwk(new X509Certificate(a.der).publicKey),
    x5c: [Buffer.from(a.der).toString('base64')],
  }));
  const jwt = bundle.jwtAuthorities.map((k) => ({
    use: 'jwt-svid' as const,
    kid: k.kid,
    ...publicJwk(k.publicKeyDer),
  }));
  return {
    keys: [...x509, ...jwt],
    spiffe_sequence: bundle.sequence,
    spiffe_refresh_hint: bundle.refreshHint,
  };
}

export interface JwksJson {
  keys: Array<PublicJwk & { kid: string; alg?: string; use?: 'sig' }>;
}

/** Plain RFC 7517 JWKS of the JWT authorities (SPIRE's "StandardJWKS"): kid + alg, no SPIFFE members. */
export function bundleToJwks(bundle: Bundle, opts: { use?: 'sig' } = {}): JwksJson {
  return {
    keys: bundle.jwtAuthorities.map((k) => {
      const key = spkiToKeyObject(k.publicKeyDer);
      const alg = jwsAlgForKey(key);
      return {
        ...publicJwk(key),
        kid: k.kid,
        ...(alg ? { alg } : {}),
        ...(opts.use ? { use: opts.use } : {}),
      };
    }),
  };
}

export function bundleToPem(bundle: Bundle): string {
  return bundle.x509Authorities.map((a) => derToPem(a.der)).join('');
}

/** The X.509 authorities as concatenated DER, as the Workload API carries them. */
export function x509BundleDer(bundle: Bundle): Uint8Array {
  return new Uint8Array(Buffer.concat(bundle.x509Authorities.map((a) => a.der)));
}

/** Parses a SPIFFE bundle document for `trustDomain`; unknown kty/use keys are skipped (spec §4.2). */
export function parseSpiffeBundle(
  json: string,
  trustDomain: string,
  maxBytes = DEFAULT_MAX_BUNDLE_BYTES,
): Bundle {
  const td = TrustDomain.parse(trustDomain).name;
  if (typeof json !== 'string') throw bad('expected a JSON string');
  if (Buffer.byteLength(json, 'utf8') > maxBytes) throw bad(`larger than ${maxBytes} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('not a JSON object');
  const d = doc as Record<string, unknown>;
  if (!Array.isArray(d.keys)) throw bad('"keys" is missing or not an array');
  let bundle: Bundle = {
    trustDomain: td,
    x509Authorities: [],
    jwtAuthorities: [],
    sequence: readCount(d.spiffe_sequence, 'spiffe_sequence', 0),
    refreshHint: readCount(d.spiffe_refresh_hint, 'spiffe_refresh_hint', DEFAULT_REFRESH_HINT),
  };
  d.keys.forEach((k, i) => {
    bundle = addKey(bundle, k, i);
  });
  return bundle;
}

function addKey(b: Bundle, k: unknown, i: number): Bundle {
  if (typeof k !== 'object' || k === null || Array.isArray(k))
    throw bad(`keys[${i}] is not an object`);
  const jwk = k as Record<string, unknown>;
  if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') return b;
  if (jwk.use === 'x509-svid') return addX509(b, jwk, i);
  if (jwk.use === 'jwt-svid') return addJwt(b, jwk, i);
  return b;
}

function addX509(b: Bundle, jwk: Record<string, unknown>, i: number): Bundle {
  const x5c = jwk.x5c;
  // Only the first entry is used; an absent or empty x5c leaves nothing to trust, so skip it.
  if (!Array.isArray(x5c) || x5c.length === 0) return b;
  const first: unknown = x5c[0];
  if (typeof first !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(first))
    throw bad(`keys[${i}].x5c[0] is not base64`);
  const der = new Uint8Array(Buffer.from(first, 'base64'));
  try {
    new X509Certificate(der);
  } catch {
    throw bad(`keys[${i}].x5c[0] is not a certificate`);
  }
  return withX509Authority(b, der);
}

function addJwt(b: Bundle, jwk: Record<string, unknown>, i: number): Bundle {
  if (typeof jwk.kid !== 'string' || jwk.kid === '') throw bad(`keys[${i}] (jwt-svid) has no kid`);
  const kid = jwk.kid;
  if (b.jwtAuthorities.some((a) => a.kid === kid))
    throw bad(`duplicate jwt-svid kid "${kid.slice(0, 80)}"`);
  let publicKeyDer: Uint8Array;
  try {
    publicKeyDer = new Uint8Array(jwkToPublicKey(jwk).export({ type: 'spki', format: 'der' }));
  } catch (e) {
    throw bad(`keys[${i}]: ${(e as Error).message}`);
  }
  const key: JwtAuthorityKey = { kid, publicKeyDer, expiresAt: 0, tainted: false };
  return { ...b, jwtAuthorities: [...b.jwtAuthorities, key] };
}

function readCount(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  // The spec allows 64-bit sequences; JSON numbers above 2^53 lose precision, so refuse them
  // rather than silently compare rounded values.
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw bad(`${name} must be a non-negative integer`);
  return v;
}

function bad(reason: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid SPIFFE bundle: ${reason}`);
}
