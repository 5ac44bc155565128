// PKCS#10 CSR parsing and self-signature verification for the issuance hot path. Any malformed,
// oversized, mis-signed or unsupported CSR is an InvalidArgumentError saying what was wrong;
// nothing else escapes for bad bytes.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';
import {
  children,
  DerError,
  expectTag,
  raw,
  readBitString,
  readOid,
  readRoot,
  readSmallInteger,
  type DerNode,
} from '../der/der-reader.ts';
import { TAG } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';
import { readExtensions, readGeneralNames } from './certificate.ts';
import { derToPem } from './pem.ts';
import { verifyAlgorithms, type VerifyAlgorithm } from './signature-algorithm.ts';
import { readSpki, type SpkiInfo } from './spki.ts';

export const DEFAULT_MAX_CSR_BYTES = 16384;

export interface ParsedCsr {
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER, ready for issueX509Svid. */
  readonly publicKeyDer: Uint8Array;
  readonly uriSans: string[];
  readonly dnsNames: string[];
}

interface CsrParts {
  readonly info: Uint8Array;
  readonly alg: VerifyAlgorithm;
  readonly signature: Uint8Array;
  readonly spki: SpkiInfo;
  readonly uriSans: string[];
  readonly dnsNames: string[];
}

/** Parses a DER CSR and verifies its self-signature synchronously. */
export function parseCsr(der: Uint8Array, maxBytes = DEFAULT_MAX_CSR_BYTES): ParsedCsr {
  const parts = csrParts(der, maxBytes);
  const publicKey = csrPublicKey(parts.spki);
  let ok: boolean;
  try {
    ok = verify(parts.alg.hash, parts.info, publicKey, parts.signature);
  } catch {
    ok = false;
  }
  return verified(parts, publicKey, ok);
}

/**
 * Same result as parseCsr, but the signature check (the dominant cost: an ECDSA verify is ~3×
 * a sign) runs on the libuv thread pool, so a server minting for many agents at once uses more
 * than one core.
 */
export async function parseCsrAsync(
  der: Uint8Array,
  maxBytes = DEFAULT_MAX_CSR_BYTES,
): Promise<ParsedCsr> {
  const parts = csrParts(der, maxBytes);
  const publicKey = csrPublicKey(parts.spki);
  const ok = await new Promise<boolean>((resolve) => {
    try {
      verify(parts.alg.hash, parts.info, publicKey, parts.signature, (err, result) =>
        resolve(!err && result),
      );
    } catch {
      resolve(false);
    }
  });
  return verified(parts, publicKey, ok);
}

function verified(parts: CsrParts, publicKey: KeyObject, ok: boolean): ParsedCsr {
  if (!ok)
    throw new InvalidArgumentError(
      'invalid CSR: the signature does not verify with the CSR public key',
    );
  return {
    publicKey,
    publicKeyDer: Uint8Array.from(parts.spki.der),
    uriSans: parts.uriSans,
    dnsNames: parts.dnsNames,
  };
}

function csrPublicKey(spki: SpkiInfo): KeyObject {
  let key: KeyObject;
  try {
    // PEM is measurably faster than DER here: OpenSSL 3 tries fewer decoders for a labelled block.
    key = createPublicKey(derToPem(spki.der, 'PUBLIC KEY'));
  } catch {
    throw new InvalidArgumentError('invalid CSR: the public key cannot be parsed');
  }
  if (spki.kind === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new InvalidArgumentError('invalid CSR: RSA keys must be at least 2048 bits');
  }
  return key;
}

function csrParts(der: Uint8Array, maxBytes: number): CsrParts {
  if (!(der instanceof Uint8Array))
    throw new InvalidArgumentError('invalid CSR: expected DER bytes');
  if (der.length === 0) throw new InvalidArgumentError('invalid CSR: empty');
  if (der.length > maxBytes)
    throw new InvalidArgumentError(`invalid CSR: larger than ${maxBytes} bytes`);
  try {
    return readCsr(der);
  } catch (e) {
    if (e instanceof InvalidArgumentError)
      throw new InvalidArgumentError(`invalid CSR: ${e.message}`);
    throw new InvalidArgumentError('invalid CSR: cannot be parsed');
  }
}

function readCsr(der: Uint8Array): CsrParts {
  const [info, algNode, sigNode, extra] = children(
    der,
    expectTag(readRoot(der), TAG.SEQUENCE, 'CertificationRequest'),
  );
  if (!info || !algNode || !sigNode || extra)
    throw new DerError('CertificationRequest must have 3 elements');
  const [version, subject, spkiNode, attrs, more] = children(
    der,
    expectTag(info, TAG.SEQUENCE, 'CertificationRequestInfo'),
  );
  if (!version || !subject || !spkiNode || more)
    throw new DerError('CertificationRequestInfo has the wrong shape');
  if (readSmallInteger(der, version) !== 0) throw new DerError('unsupported CSR version');
  expectTag(subject, TAG.SEQUENCE, 'subject');
  const spki = readSpki(der, spkiNode);
  const alg = readSignatureAlgorithm(der, algNode);
  if (!spki.kind.startsWith(alg.keyFamily)) {
    throw new InvalidArgumentError(
      `signature algorithm needs a ${alg.keyFamily} key, the CSR has ${spki.kind}`,
    );
  }
  const sig = readBitString(der, sigNode);
  if (sig.unused !== 0) throw new DerError('signature has unused bits');
  const sans = attrs ? readRequestedSans(der, attrs) : { uris: [], dnsNames: [] };
  return {
    info: raw(der, info),
    alg,
    signature: sig.bytes,
    spki,
    uriSans: sans.uris,
    dnsNames: sans.dnsNames,
  };
}

function readSignatureAlgorithm(der: Uint8Array, node: DerNode): VerifyAlgorithm {
  const [algOid, params, extra] = children(
    der,
    expectTag(node, TAG.SEQUENCE, 'signatureAlgorithm'),
  );
  if (!algOid || extra) throw new DerError('bad signatureAlgorithm');
  const id = readOid(der, algOid);
  const alg = verifyAlgorithms.get(id);
  if (!alg) throw new InvalidArgumentError(`unsupported signature algorithm ${id}`);
  const nullOk = alg.nullParams && params?.tag === TAG.NULL && params.end === params.contentStart;
  if (params && !nullOk) throw new DerError(`unexpected parameters for signature algorithm ${id}`);
  return alg;
}

function readRequestedSans(
  der: Uint8Array,
  attrs: DerNode,
): { uris: string[]; dnsNames: string[] } {
  if (attrs.tag !== 0xa0) throw new DerError('CSR attributes must be [0]');
  let found: { uris: string[]; dnsNames: string[] } | null = null;
  for (const attr of children(der, attrs)) {
    const [type, values] = children(der, expectTag(attr, TAG.SEQUENCE, 'Attribute'));
    if (!type || !values) throw new DerError('bad Attribute');
    if (readOid(der, type) !== OID.extensionRequest) continue;
    if (found) throw new DerError('more than one extensionRequest attribute');
    const [exts, extraValue] = children(der, expectTag(values, TAG.SET, 'Attribute values'));
    if (!exts || extraValue) throw new DerError('extensionRequest must have one value');
    const san = readExtensions(der, exts).get(OID.subjectAltName);
    found = san ? readGeneralNames(Uint8Array.from(san.value)) : { uris: [], dnsNames: [] };
  }
  return found ?? { uris: [], dnsNames: [] };
}
