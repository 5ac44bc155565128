// The bundle's authorities as a JSON document; DER bytes as base64 so they round-trip exactly.
import type { Bundle, JwtAuthorityKey, X509AuthorityCert } from '../../core/bundle.ts';
import { fromBase64, toBase64 } from './codec.ts';
import type { BundleRow } from './schema.ts';

interface Document {
  x509: { der: string; tainted: boolean }[];
  jwt: { kid: string; der: string; expiresAt: number; tainted: boolean }[];
}

export function toBundleRow(b: Bundle): BundleRow {
  const doc: Document = {
    x509: b.x509Authorities.map((a) => ({ der: toBase64(a.der), tainted: a.tainted })),
    jwt: b.jwtAuthorities.map((k) => ({
      kid: k.kid,
      der: toBase64(k.publicKeyDer),
      expiresAt: k.expiresAt,
      tainted: k.tainted,
    })),
  };
  return {
    trust_domain: b.trustDomain,
    sequence: b.sequence,
    refresh_hint: b.refreshHint,
    document: JSON.stringify(doc),
  };
}

export function fromBundleRow(r: BundleRow): Bundle {
  const doc = JSON.parse(r.document) as Document;
  const x509Authorities: X509AuthorityCert[] = doc.x509.map((a) => ({
    der: fromBase64(a.der),
    tainted: a.tainted,
  }));
  const jwtAuthorities: JwtAuthorityKey[] = doc.jwt.map((k) => ({
    kid: k.kid,
    publicKeyDer: fromBase64(k.der),
    expiresAt: k.expiresAt,
    tainted: k.tainted,
  }));
  return {
    trustDomain: r.trust_domain,
    x509Authorities,
    jwtAuthorities,
    sequence: Number(r.sequence),
    refreshHint: Number(r.refresh_hint),
  };
}
