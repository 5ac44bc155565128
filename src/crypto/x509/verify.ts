// X509-SVID validation (X509-SVID spec §5): RFC 5280 path validation against the bundle of the
// leaf's trust domain only, then the SVID rules for the leaf. Used to authenticate mTLS callers.
// Signatures and issuer/AKID matching are delegated to OpenSSL via node's X509Certificate; the
// extension rules are read with our DER reader (node does not expose KeyUsage bits).
import { X509Certificate } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';
import { parseLeafId, type SpiffeId } from '../../core/spiffe-id.ts';
import { OID } from '../der/oids.ts';
import { serialHex } from './certificate-builder.ts';
import {
  basicConstraints,
  keyUsageBits,
  KU,
  parseCertificate,
  subjectAltNames,
  type ParsedCertificate,
} from './certificate.ts';

export const MAX_CHAIN_LENGTH = 8;

/** The bundle's CA certificates (DER), or a lookup by the leaf's trust domain name. */
export type X509BundleSource =
  readonly Uint8Array[] | ((trustDomain: string) => readonly Uint8Array[] | null | undefined);

export interface VerifiedX509Svid {
  readonly spiffeId: string;
  readonly id: SpiffeId;
  readonly serialHex: string;
  readonly notAfter: number;
}

// Extensions this validator understands; an unknown critical one fails closed (RFC 5280 §4.2).
const known = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
]);

// Bundle roots are re-used across many handshakes; parse each DER array once.
const x509Cache = new WeakMap<Uint8Array, X509Certificate>();

export function verifyX509Svid(
  chainDer: readonly Uint8Array[],
  bundle: X509BundleSource,
  now: number,
): VerifiedX509Svid {
  if (chainDer.length === 0) throw new InvalidArgumentError('empty certificate chain');
  if (chainDer.length > MAX_CHAIN_LENGTH) {
    throw new InvalidArgumentError(`certificate chain longer than ${MAX_CHAIN_LENGTH}`);
  }
  const chain = chainDer.map((d, i) =>
    parseCertificate(d, i === 0 ? 'leaf certificate' : `chain certificate #${i}`),
  );
  const leaf = chain[0] as ParsedCertificate;
  const id = checkLeaf(leaf);
  const roots = typeof bundle === 'function' ? bundle(id.trustDomain.name) : bundle;
  if (!roots || roots.length === 0) {
    throw new InvalidArgumentError(`no X.509 bundle for trust domain "${id.trustDomain.name}"`);
  }
  validatePath(chain, roots, now, id.trustDomain.name);
  return {
    spiffeId: id.toString(),
    id,
    serialHex: serialHex(leaf.serial),
    notAfter: leaf.notAfter,
  };
}

function checkLeaf(leaf: ParsedCertificate): SpiffeId {
  if (basicConstraints(leaf)?.ca === true)
    throw new InvalidArgumentError('leaf certificate is a CA (cA=true)');
  const ku = keyUsageBits(leaf);
  if (ku !== null && (ku & KU.keyCertSign) !== 0)
    throw new InvalidArgumentError('leaf certificate has keyCertSign');
  if (ku !== null && (ku & KU.cRLSign) !== 0)
    throw new InvalidArgumentError('leaf certificate has cRLSign');
  const { uris } = subjectAltNames(leaf);
  if (uris.length !== 1) {
    throw new InvalidArgumentError(
      `leaf certificate must have exactly one URI SAN, it has ${uris.length}`,
    );
  }
  return parseLeafId(uris[0] as string, 'leaf URI SAN');
}

function validatePath(
  chain: ParsedCertificate[],
  roots: readonly Uint8Array[],
  now: number,
  td: string,
): void {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as ParsedCertificate;
    const label = i === 0 ? 'leaf certificate' : `chain certificate #${i}`;
    checkCommon(cert, now, label);
    // i intermediates sit between this certificate and the leaf, so an issuer must allow pathLen ≥ i - 1.
    if (i > 0) checkCa(cert, i - 1, label);
    const x = toX509(cert.der);
    for (const rootDer of roots) {
      const root = toX509(rootDer);
      if (!x.checkIssued(root) || !x.verify(root.publicKey)) continue;
      const parsedRoot = parseCertificate(rootDer, 'bundle certificate');
      checkCommon(parsedRoot, now, 'bundle certificate');
      checkCa(parsedRoot, i, 'bundle certificate');
      return;
    }
    const next = chain[i + 1];
    if (!next)
      throw new InvalidArgumentError(
        `certificate chain does not lead to a CA in the bundle of "${td}"`,
      );
    const nx = toX509(next.der);
    if (!x.checkIssued(nx) || !x.verify(nx.publicKey)) {
      throw new InvalidArgumentError(`${label} is not signed by chain certificate #${i + 1}`);
    }
  }
}

function checkCommon(cert: ParsedCertificate, now: number, label: string): void {
  if (now < cert.notBefore) throw new InvalidArgumentError(`${label} is not yet valid`);
  if (now > cert.notAfter) throw new InvalidArgumentError(`${label} has expired`);
  for (const [oid, ext] of cert.extensions) {
    if (ext.critical && !known.has(oid)) {
      throw new InvalidArgumentError(`${label} has an unsupported critical extension ${oid}`);
    }
  }
}

function checkCa(cert: ParsedCertificate, intermediatesBelow: number, label: string): void {
  const bc = basicConstraints(cert);
  if (bc?.ca !== true) throw new InvalidArgumentError(`${label} is not a CA`);
  const ku = keyUsageBits(cert);
  if (ku !== null && (ku & KU.keyCertSign) === 0)
    throw new InvalidArgumentError(`${label} lacks keyCertSign`);
  if (bc.pathLen !== undefined && intermediatesBelow > bc.pathLen) {
    throw new InvalidArgumentError(`${label} path length constraint exceeded`);
  }
}

function toX509(der: Uint8Array): X509Certificate {
  let x = x509Cache.get(der);
  if (!x) {
    try {
      x = new X509Certificate(der);
    } catch {
      throw new InvalidArgumentError('certificate cannot be parsed');
    }
    x509Cache.set(der, x);
  }
  return x;
}
