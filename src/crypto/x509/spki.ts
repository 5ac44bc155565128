// SubjectPublicKeyInfo reading: which key family/curve it holds, and the raw key bits (for key
// ids). Reading the OIDs ourselves lets us reject unsupported keys before OpenSSL parses them.
import {
  children,
  DerError,
  expectTag,
  raw,
  readBitString,
  readOid,
  type DerNode,
} from '../der/der-reader.ts';
import { TAG } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';

export type SpkiKind = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'rsa' | 'ed25519';

export interface SpkiInfo {
  readonly kind: SpkiKind;
  /** The whole SubjectPublicKeyInfo DER. */
  readonly der: Uint8Array;
  /** The subjectPublicKey BIT STRING value (EC point, RSAPublicKey, Ed25519 key). */
  readonly subjectPublicKey: Uint8Array;
}

const curves: Record<string, SpkiKind> = {
  [OID.p256]: 'ec-p256',
  [OID.p384]: 'ec-p384',
  [OID.p521]: 'ec-p521',
};

export function readSpki(buf: Uint8Array, node: DerNode): SpkiInfo {
  expectTag(node, TAG.SEQUENCE, 'SubjectPublicKeyInfo');
  const [alg, bits, extra] = children(buf, node);
  if (!alg || !bits || extra) throw new DerError('SubjectPublicKeyInfo must have 2 elements');
  const [algOid, params] = children(buf, expectTag(alg, TAG.SEQUENCE, 'key AlgorithmIdentifier'));
  if (!algOid) throw new DerError('key AlgorithmIdentifier is empty');
  const bs = readBitString(buf, bits);
  if (bs.unused !== 0) throw new DerError('subjectPublicKey has unused bits');
  return {
    kind: keyKind(buf, readOid(buf, algOid), params),
    der: raw(buf, node),
    subjectPublicKey: bs.bytes,
  };
}

function keyKind(buf: Uint8Array, algOid: string, params: DerNode | undefined): SpkiKind {
  if (algOid === OID.ecPublicKey) {
    if (!params || params.tag !== TAG.OID) throw new DerError('EC key without a named curve');
    const curve = readOid(buf, params);
    const kind = curves[curve];
    if (!kind) throw new DerError(`unsupported EC curve ${curve}`);
    return kind;
  }
  if (algOid === OID.rsaEncryption) return 'rsa';
  if (algOid === OID.ed25519) return 'ed25519';
  throw new DerError(`unsupported public key algorithm ${algOid}`);
}
