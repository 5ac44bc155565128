// Workload API messages → typed objects. Anything malformed becomes a WorkloadResponseError.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { parseLeafId, TrustDomain } from '../../core/spiffe-id.ts';
import { readNode } from '../../crypto/der/der-reader.ts';
import { jwkToPublicKey } from '../../crypto/jwk.ts';
import { parseCertificate, subjectAltNames } from '../../crypto/x509/certificate.ts';
import type {
  JWTSVID,
  X509BundlesResponse,
  X509SVID,
  X509SVIDResponse,
} from '../../../proto/gen/spiffe/workload_pb.js';
import { WorkloadResponseError } from './errors.ts';
import type {
  JwtBundle,
  JwtBundleSet,
  JwtSvid,
  X509BundleSet,
  X509Context,
  X509Svid,
} from './types.ts';

const MAX_CERTS = 1000;

function guard<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof WorkloadResponseError) throw e;
    throw new WorkloadResponseError(`${what}: ${(e as Error).message}`, { cause: e });
  }
}

/** The trust-domain name of a map key ("spiffe://td", or a bare name). */
export function trustDomainName(key: string): string {
  return guard(`bundle key "${key.slice(0, 80)}"`, () => TrustDomain.parse(key).name);
}

/** Splits concatenated DER certificates (the wire form of bundles and chains). */
export function splitDer(buf: Uint8Array, what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < buf.length) {
    const n = guard(what, () => readNode(buf, off));
    if (n.tag !== 0x30) throw new WorkloadResponseError(`${what}: not a DER certificate`);
    out.push(Uint8Array.from(buf.subarray(off, n.end)));
    if (out.length > MAX_CERTS) throw new WorkloadResponseError(`${what}: too many certificates`);
    off = n.end;
  }
  return out;
}

/** The X509-SVID fields of the wire message (also usable to build an X509Svid from files). */
export type X509SvidFields = Pick<X509SVID, 'spiffeId' | 'x509Svid' | 'x509SvidKey' | 'hint'>;

export function parseX509Svid(m: X509SvidFields): X509Svid {
  const what = `X509-SVID "${m.spiffeId.slice(0, 120)}"`;
  return guard(what, () => {
    const id = parseLeafId(m.spiffeId, 'X509-SVID spiffe_id');
    const chainDer = splitDer(m.x509Svid, `${what} chain`);
    if (chainDer.length === 0) throw new WorkloadResponseError(`${what}: empty certificate chain`);
    const leaf = parseCertificate(chainDer[0] as Uint8Array, 'leaf certificate');
    const uris = subjectAltNames(leaf).uris;
    if (uris.length !== 1 || uris[0] !== id.toString()) {
      throw new WorkloadResponseError(`${what}: the leaf's URI SAN does not match spiffe_id`);
    }
    const certificates = chainDer.map((d) => new X509Certificate(d));
    const privateKey = createPrivateKey({
      key: Buffer.from(m.x509SvidKey),
      format: 'der',
      type: 'pkcs8',
    });
    if (!(certificates[0] as X509Certificate).checkPrivateKey(privateKey)) {
      throw new WorkloadResponseError(`${what}: the private key does not match the leaf`);
    }
    const hint = m.hint;
    return {
      spiffeId: id.toString(),
      id,
      chainDer,
      certificates,
      privateKey,
      hint,
      expiresAt: leaf.notAfter,
    };
  });
}

export function parseX509Context(r: X509SVIDResponse): X509Context {
  if (r.svids.length === 0) throw new WorkloadResponseError('no SVIDs in the response');
  const svids = r.svids.map(parseX509Svid);
  const bundles = new Map<string, readonly Uint8Array[]>();
  r.svids.forEach((m, i) => {
    const td = (svids[i] as X509Svid).id.trustDomain.name;
    if (bundles.has(td)) return;
    const certs = splitDer(m.bundle, `bundle of "${td}"`);
    if (certs.length === 0) throw new WorkloadResponseError(`empty bundle for "${td}"`);
    bundles.set(td, certs);
  });
  for (const [k, v] of Object.entries(r.federatedBundles)) {
    const td = trustDomainName(k);
    if (!bundles.has(td)) bundles.set(td, splitDer(v, `federated bundle of "${td}"`));
  }
  return { svids, bundles };
}

export function parseX509Bundles(r: X509BundlesResponse): X509BundleSet {
  const out = new Map<string, readonly Uint8Array[]>();
  for (const [k, v] of Object.entries(r.bundles)) {
    const td = trustDomainName(k);
    out.set(td, splitDer(v, `bundle of "${td}"`));
  }
  return out;
}

/** A JWKS ({"keys":[...]}) → KeyObjects by kid. Keys with another `use`, no kid or an unknown kty are skipped. */
export function parseJwks(json: Uint8Array | string, what = 'JWKS'): JwtBundle {
  const text = typeof json === 'string' ? json : Buffer.from(json).toString('utf8');
  const doc = guard(what, () => JSON.parse(text) as unknown);
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(keys)) {
    throw new WorkloadResponseError(`${what}: not a JWK set`);
  }
  const out = new Map<string, KeyObject>();
  for (const k of keys as unknown[]) {
    if (typeof k !== 'object' || k === null) continue;
    const jwk = k as Record<string, unknown>;
    if (jwk.use !== undefined && jwk.use !== 'jwt-svid' && jwk.use !== 'sig') continue;
    if (typeof jwk.kid !== 'string' || jwk.kid === '' || out.has(jwk.kid)) continue;
    if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') continue;
    try {
      out.set(jwk.kid, jwkToPublicKey(jwk));
    } catch {
      // An unusable key is ignored, as the bundle spec asks.
    }
  }
  return out;
}

export function parseJwtBundles(bundles: { [key: string]: Uint8Array }): JwtBundleSet {
  const out = new Map<string, JwtBundle>();
  for (const [k, v] of Object.entries(bundles)) {
    const td = trustDomainName(k);
    out.set(td, parseJwks(v, `JWT bundle of "${td}"`));
  }
  return out;
}

export function parseJwtSvid(m: JWTSVID): JwtSvid {
  const what = `JWT-SVID "${m.spiffeId.slice(0, 120)}"`;
  return guard(what, () => {
    const id = parseLeafId(m.spiffeId, 'JWT-SVID spiffe_id');
    const parts = m.svid.split('.');
    if (parts.length !== 3) throw new WorkloadResponseError(`${what}: not a compact JWS`);
    const claims = JSON.parse(
      Buffer.from(parts[1] as string, 'base64url').toString('utf8'),
    ) as unknown;
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
      throw new WorkloadResponseError(`${what}: the payload is not a JSON object`);
    }
    const c = claims as Record<string, unknown>;
    if (c.sub !== id.toString()) throw new WorkloadResponseError(`${what}: sub does not match`);
    if (typeof c.exp !== 'number') throw new WorkloadResponseError(`${what}: exp is missing`);
    const aud = typeof c.aud === 'string' ? [c.aud] : Array.isArray(c.aud) ? c.aud : [];
    const issuedAt = typeof c.iat === 'number' ? c.iat * 1000 : undefined;
    return {
      spiffeId: id.toString(),
      id,
      token: m.svid,
      hint: m.hint,
      audience: aud.filter((a): a is string => typeof a === 'string'),
      expiresAt: c.exp * 1000,
      issuedAt,
      claims: c,
    };
  });
}
