// Certificate reading with the minimal DER reader: the fields the CA, the SVID template and the
// validator need, with extensions by OID. Used where node's X509Certificate lacks the data
// (KeyUsage bits, raw issuer/subject bytes, SKID bytes).
import { InvalidArgumentError } from '../../core/errors.ts';
import {
  children,
  content,
  DerError,
  expectTag,
  raw,
  readBoolean,
  readNode,
  readOid,
  readRoot,
  readSmallInteger,
  readTime,
  readBitString,
  type DerNode,
} from '../der/der-reader.ts';
import { TAG } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';
import { readSpki, type SpkiInfo } from './spki.ts';

export interface CertExtension {
  readonly critical: boolean;
  /** extnValue contents (the DER of the extension's own structure). */
  readonly value: Uint8Array;
}

export interface ParsedCertificate {
  readonly der: Uint8Array;
  readonly serial: Uint8Array;
  readonly signatureAlgorithm: string;
  /** Raw DER Names, so an issued certificate's issuer is byte-identical to the CA subject. */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly spki: SpkiInfo;
  readonly extensions: ReadonlyMap<string, CertExtension>;
}

export function parseCertificate(der: Uint8Array, what = 'certificate'): ParsedCertificate {
  try {
    return parseCertificateUnchecked(der);
  } catch (e) {
    if (e instanceof InvalidArgumentError)
      throw new InvalidArgumentError(`invalid ${what}: ${e.message}`);
    throw e;
  }
}

function parseCertificateUnchecked(der: Uint8Array): ParsedCertificate {
  const [tbs, sigAlg, sig] = children(der, expectTag(readRoot(der), TAG.SEQUENCE, 'Certificate'));
  if (!tbs || !sigAlg || !sig) throw new DerError('Certificate must have 3 elements');
  const f = children(der, expectTag(tbs, TAG.SEQUENCE, 'TBSCertificate'));
  // version [0] EXPLICIT is optional (v1); SPIFFE needs v3 extensions, so require it.
  if (f[0]?.tag !== 0xa0) throw new DerError('not an X.509 v3 certificate');
  const version = readSmallInteger(der, readNode(der, f[0].contentStart, f[0].end));
  if (version !== 2) throw new DerError('not an X.509 v3 certificate');
  const [, serial, sigInner, issuer, validity, subject, spki, ...rest] = f;
  if (!serial || !sigInner || !issuer || !validity || !subject || !spki) {
    throw new DerError('TBSCertificate is missing fields');
  }
  const [nb, na] = children(der, expectTag(validity, TAG.SEQUENCE, 'Validity'));
  if (!nb || !na) throw new DerError('Validity must have 2 times');
  const extsNode = rest.find((n) => n.tag === 0xa3);
  return {
    der,
    serial: content(der, expectTag(serial, TAG.INTEGER, 'serialNumber')),
    signatureAlgorithm: readOid(der, children(der, sigAlg)[0] ?? sigAlg),
    issuer: raw(der, expectTag(issuer, TAG.SEQUENCE, 'issuer')),
    subject: raw(der, expectTag(subject, TAG.SEQUENCE, 'subject')),
    notBefore: readTime(der, nb),
    notAfter: readTime(der, na),
    spki: readSpki(der, spki),
    extensions: extsNode ? readExtensions(der, extsNode) : new Map(),
  };
}

/** Reads `[3] EXPLICIT Extensions` (certificates) or a bare Extensions SEQUENCE (CSRs). */
export function readExtensions(buf: Uint8Array, node: DerNode): Map<string, CertExtension> {
  const seqNode = node.tag === 0xa3 ? readNode(buf, node.contentStart, node.end) : node;
  const out = new Map<string, CertExtension>();
  for (const ext of children(buf, expectTag(seqNode, TAG.SEQUENCE, 'Extensions'))) {
    const parts = children(buf, expectTag(ext, TAG.SEQUENCE, 'Extension'));
    const [idNode, second, third] = parts;
    if (!idNode || !second) throw new DerError('Extension is too short');
    const id = readOid(buf, idNode);
    const critical = third ? readBoolean(buf, second) : false;
    const valueNode = expectTag(third ?? second, TAG.OCTET_STRING, 'extnValue');
    if (out.has(id)) throw new DerError(`duplicate extension ${id}`);
    out.set(id, { critical, value: content(buf, valueNode) });
  }
  return out;
}

export interface BasicConstraints {
  readonly ca: boolean;
  readonly pathLen: number | undefined;
}

export function basicConstraints(cert: ParsedCertificate): BasicConstraints | null {
  const ext = cert.extensions.get(OID.basicConstraints);
  if (!ext) return null;
  const v = ext.value;
  const items = children(v, expectTag(readRoot(v), TAG.SEQUENCE, 'BasicConstraints'));
  let i = 0;
  const ca = items[0]?.tag === TAG.BOOLEAN ? readBoolean(v, items[i++] as DerNode) : false;
  const pl = items[i];
  return { ca, pathLen: pl ? readSmallInteger(v, pl) : undefined };
}

export const KU = {
  digitalSignature: 0x80,
  keyEncipherment: 0x20,
  keyAgreement: 0x08,
  keyCertSign: 0x04,
  cRLSign: 0x02,
} as const;

/** The first KeyUsage byte (bits 0-7), or null when the extension is absent. */
export function keyUsageBits(cert: ParsedCertificate): number | null {
  const ext = cert.extensions.get(OID.keyUsage);
  if (!ext) return null;
  const bs = readBitString(ext.value, readRoot(ext.value));
  return bs.bytes[0] ?? 0;
}

export interface SubjectAltNames {
  readonly uris: string[];
  readonly dnsNames: string[];
}

export function readGeneralNames(v: Uint8Array): SubjectAltNames {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const n of children(v, expectTag(readRoot(v), TAG.SEQUENCE, 'GeneralNames'))) {
    const text = () => Buffer.from(content(v, n)).toString('latin1');
    if (n.tag === 0x86) uris.push(text());
    else if (n.tag === 0x82) dnsNames.push(text());
  }
  return { uris, dnsNames };
}

export function subjectAltNames(cert: ParsedCertificate): SubjectAltNames {
  const ext = cert.extensions.get(OID.subjectAltName);
  return ext ? readGeneralNames(ext.value) : { uris: [], dnsNames: [] };
}

export function subjectKeyId(cert: ParsedCertificate): Uint8Array | null {
  const ext = cert.extensions.get(OID.subjectKeyIdentifier);
  if (!ext) return null;
  return content(
    ext.value,
    expectTag(readRoot(ext.value), TAG.OCTET_STRING, 'SubjectKeyIdentifier'),
  );
}
