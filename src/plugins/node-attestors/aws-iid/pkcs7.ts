// Verification of the PKCS#7 (CMS SignedData) that signs an EC2 instance identity document.
// Trust comes only from the configured AWS certificates: certificates embedded in the PKCS#7 are
// never used to verify (one that is not byte-for-byte a trusted certificate is refused), and the
// signature is checked with the key type the trusted certificate names, whatever algorithm the
// (untrusted) SignerInfo claims.
import { X509Certificate, createHash, verify } from 'node:crypto';
import { ContentInfo, SignedData, type SignerInfo } from '@peculiar/asn1-cms';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { PermissionDeniedError } from '../../../core/errors.ts';
import { set } from '../../../crypto/der/der-writer.ts';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const ID_DATA = '1.2.840.113549.1.7.1';
const ID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const ID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';

const DIGESTS: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** Signature algorithm OIDs a SignerInfo may name, by the key type of the signing certificate. */
const SIGNATURE_OIDS: Readonly<Record<string, readonly string[]>> = {
  dsa: ['1.2.840.10040.4.1', '1.2.840.10040.4.3', '2.16.840.1.101.3.4.3.2'],
  rsa: [
    '1.2.840.113549.1.1.1',
    '1.2.840.113549.1.1.5',
    '1.2.840.113549.1.1.11',
    '1.2.840.113549.1.1.12',
    '1.2.840.113549.1.1.13',
  ],
  ec: ['1.2.840.10045.2.1', '1.2.840.10045.4.3.2', '1.2.840.10045.4.3.3', '1.2.840.10045.4.3.4'],
};

export const MAX_PKCS7_BYTES = 16 * 1024;

export interface TrustedCertificate {
  readonly x509: X509Certificate;
  /** DER of the issuer Name and the serial number's bytes, to match a SignerInfo's sid. */
  readonly issuerDer: Buffer;
  readonly serial: Buffer;
}

export function trustedCertificate(pem: string): TrustedCertificate {
  const x509 = new X509Certificate(pem);
  const cert = AsnConvert.parse(x509.raw, Certificate);
  return {
    x509,
    issuerDer: Buffer.from(AsnConvert.serialize(cert.tbsCertificate.issuer)),
    serial: stripZeros(Buffer.from(cert.tbsCertificate.serialNumber)),
  };
}

export interface VerifiedPkcs7 {
  /** The signed content: the instance identity document. */
  readonly content: Buffer;
  readonly signer: TrustedCertificate;
}

const deny = (m: string) => new PermissionDeniedError(`aws_iid: ${m}`);

/**
 * Verifies `der` (untrusted, from the agent). `detached` is the document the agent sent beside
 * it: used when the PKCS#7 carries no content, and must equal the content when it does.
 */
export function verifyIidPkcs7(
  der: Uint8Array,
  detached: Buffer | null,
  trusted: readonly TrustedCertificate[],
  now: number,
): VerifiedPkcs7 {
  if (der.length === 0 || der.length > MAX_PKCS7_BYTES)
    throw deny(`PKCS#7 must be 1..${MAX_PKCS7_BYTES} bytes`);
  const sd = parseSignedData(der);
  if (sd.signerInfos.length !== 1)
    throw deny(`PKCS#7 must have exactly one signer (it has ${sd.signerInfos.length})`);
  if (sd.crls && sd.crls.length > 0) throw deny('PKCS#7 must not carry CRLs');
  for (const c of sd.certificates ?? []) {
    const raw = c.certificate ? Buffer.from(AsnConvert.serialize(c.certificate)) : null;
    if (!raw || !trusted.some((t) => t.x509.raw.equals(raw)))
      throw deny('PKCS#7 carries a certificate that is not a trusted AWS certificate');
  }
  if (sd.encapContentInfo.eContentType !== ID_DATA) throw deny('PKCS#7 content is not data');
  const embedded = sd.encapContentInfo.eContent?.single
    ? Buffer.from(sd.encapContentInfo.eContent.single.buffer)
    : null;
  if (embedded && detached && !embedded.equals(detached))
    throw deny('the document differs from the content the PKCS#7 signs');
  const content = embedded ?? detached;
  if (!content) throw deny('PKCS#7 carries no content and no document was sent');
  const si = sd.signerInfos[0] as SignerInfo;
  const signer = findSigner(si, trusted);
  if (Date.parse(signer.x509.validFrom) > now || Date.parse(signer.x509.validTo) < now)
    throw deny('the signing AWS certificate is outside its validity period');
  verifySignerInfo(si, content, signer);
  return { content, signer };
}

function parseSignedData(der: Uint8Array): SignedData {
  try {
    const ci = AsnConvert.parse(der, ContentInfo);
    if (ci.contentType !== ID_SIGNED_DATA) throw new Error('not SignedData');
    return AsnConvert.parse(ci.content, SignedData);
  } catch {
    throw deny('signature is not a PKCS#7 SignedData structure');
  }
}

function findSigner(si: SignerInfo, trusted: readonly TrustedCertificate[]): TrustedCertificate {
  const ias = si.sid.issuerAndSerialNumber;
  if (!ias) throw deny('the signer must be named by issuer and serial number');
  const issuer = Buffer.from(AsnConvert.serialize(ias.issuer));
  const serial = stripZeros(Buffer.from(ias.serialNumber));
  const t = trusted.find((c) => c.issuerDer.equals(issuer) && c.serial.equals(serial));
  if (!t) throw deny('the PKCS#7 signer is not a trusted AWS certificate');
  return t;
}

function verifySignerInfo(si: SignerInfo, content: Buffer, signer: TrustedCertificate): void {
  const hash = DIGESTS[si.digestAlgorithm.algorithm];
  if (!hash) throw deny(`unsupported digest algorithm ${si.digestAlgorithm.algorithm}`);
  const keyType = signer.x509.publicKey.asymmetricKeyType ?? '';
  if (!(SIGNATURE_OIDS[keyType] ?? []).includes(si.signatureAlgorithm.algorithm))
    throw deny(
      `signature algorithm ${si.signatureAlgorithm.algorithm} does not match the certificate's ${keyType} key`,
    );
  let signed: Buffer = content;
  if (si.signedAttrs) {
    // With signed attributes the signature covers their DER as a SET OF (RFC 5652 §5.4), and
    // the messageDigest attribute binds the content.
    const ct = si.signedAttrs.find((a) => a.attrType === ID_CONTENT_TYPE);
    const md = si.signedAttrs.find((a) => a.attrType === ID_MESSAGE_DIGEST);
    if (!ct || !md || ct.attrValues.length !== 1 || md.attrValues.length !== 1)
      throw deny('signed attributes must hold one content type and one message digest');
    const digest = createHash(hash).update(content).digest();
    const claimed = octetStringValue(Buffer.from(md.attrValues[0] as ArrayBuffer));
    if (!claimed || !claimed.equals(digest))
      throw deny('message digest does not match the document');
    signed = set(...si.signedAttrs.map((a) => Buffer.from(AsnConvert.serialize(a))));
  }
  const ok = verify(hash, signed, signer.x509.publicKey, Buffer.from(si.signature.buffer));
  if (!ok) throw deny('PKCS#7 signature does not verify with the AWS certificate');
}

/** The content of a DER OCTET STRING of short or long form length, or null. */
function octetStringValue(b: Buffer): Buffer | null {
  if (b[0] !== 0x04 || b.length < 2) return null;
  const first = b[1] as number;
  if (first < 0x80) return b.length === 2 + first ? b.subarray(2) : null;
  const n = first & 0x7f;
  if (n < 1 || n > 2 || b.length < 2 + n) return null;
  const len = n === 1 ? (b[2] as number) : b.readUInt16BE(2);
  return b.length === 2 + n + len ? b.subarray(2 + n) : null;
}

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}
