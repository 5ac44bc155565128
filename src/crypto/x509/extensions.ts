// Certificate extensions as DER. Constant ones are encoded once at module load.
import { createHash } from 'node:crypto';
import { bitString, bool, ctx, octetString, oid, seq, smallInteger } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';

export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? seq(oid(id), bool(true), octetString(value)) : seq(oid(id), octetString(value));
}

// KeyUsage bits (RFC 5280 §4.2.1.3), as a DER BIT STRING with trailing zero bits trimmed.
// Leaf: digitalSignature(0) | keyEncipherment(2) | keyAgreement(4) = 0b10101000 → 3 unused bits.
// keyEncipherment means nothing for EC keys but SPIRE sets it; clients expect the same template.
export const leafKeyUsageExt = extension(OID.keyUsage, true, bitString(Uint8Array.of(0xa8), 3));
// CA: keyCertSign(5) | cRLSign(6) = 0b00000110 → 1 unused bit.
export const caKeyUsageExt = extension(OID.keyUsage, true, bitString(Uint8Array.of(0x06), 1));

// BasicConstraints is critical in both templates, as Go (hence SPIRE) writes it.
export const leafBasicConstraintsExt = extension(OID.basicConstraints, true, seq());
export function caBasicConstraintsExt(pathLen?: number): Buffer {
  const parts = [bool(true), ...(pathLen === undefined ? [] : [smallInteger(pathLen)])];
  return extension(OID.basicConstraints, true, seq(...parts));
}

export const serverClientEkuExt = extension(
  OID.extKeyUsage,
  false,
  seq(oid(OID.serverAuth), oid(OID.clientAuth)),
);

export function subjectKeyIdExt(keyId: Uint8Array): Buffer {
  return extension(OID.subjectKeyIdentifier, false, octetString(keyId));
}

export function authorityKeyIdExt(keyId: Uint8Array): Buffer {
  return extension(OID.authorityKeyIdentifier, false, seq(ctx(0, false, keyId)));
}

/** SAN with URIs ([6]) then DNS names ([2]); critical only when the subject is empty (X509-SVID §2). */
export function subjectAltNameExt(
  uris: readonly string[],
  dnsNames: readonly string[],
  critical: boolean,
): Buffer {
  const names = [
    ...uris.map((u) => ctx(6, false, Buffer.from(u, 'latin1'))),
    ...dnsNames.map((d) => ctx(2, false, Buffer.from(d, 'latin1'))),
  ];
  return extension(OID.subjectAltName, critical, seq(...names));
}

/**
 * RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. Same as Go's
 * x509 package, so our key ids match what SPIRE would compute for the same key.
 */
export function keyIdFromSubjectPublicKey(subjectPublicKey: Uint8Array): Buffer {
  return createHash('sha1').update(subjectPublicKey).digest();
}
