// CA certificate templates (SPIRE's, with Tessera's subject): cA=true, critical KeyUsage
// keyCertSign|cRLSign, SKID, and the trust domain ID as the single URI SAN. Built with the same
// DER code as leaves, so a KMS-backed ManagedKey (async sign only) can be a CA.
import { sign, type KeyObject } from 'node:crypto';
import type { KeyType } from '../../core/authority.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { readRoot } from '../der/der-reader.ts';
import type { ManagedKey } from '../key-manager.ts';
import { hashFor, keyTypeOf } from '../keys/key-types.ts';
import { parseCertificate, subjectKeyId } from './certificate.ts';
import {
  assembleCertificate,
  buildTbs,
  randomSerial,
  type IssuedCertificate,
} from './certificate-builder.ts';
import {
  authorityKeyIdExt,
  caBasicConstraintsExt,
  caKeyUsageExt,
  keyIdFromSubjectPublicKey,
  subjectAltNameExt,
  subjectKeyIdExt,
} from './extensions.ts';
import { encodeName, type DistinguishedName } from './name.ts';
import { signingAlgorithmFor } from './signature-algorithm.ts';
import { readSpki } from './spki.ts';

export interface CaOptions {
  readonly key: ManagedKey;
  /** Trust domain name or ID ("example.org" or "spiffe://example.org"). */
  readonly trustDomain: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Default: C=US, O=Tessera, serialNumber=<certificate serial in decimal> (as SPIRE does). */
  readonly subject?: DistinguishedName;
  readonly pathLen?: number;
}

export interface UpstreamCa {
  /** The upstream CA certificate first, then its own chain up to (optionally) the root. */
  readonly certChainDer: readonly Uint8Array[];
  readonly key: KeyObject;
}

export async function createSelfSignedCa(opts: CaOptions): Promise<IssuedCertificate> {
  const serial = randomSerial();
  const subjectDer = subjectFor(opts.subject, serial);
  // Self-signed: no AKID (RFC 5280 §4.2.1.1 allows omitting it; Go omits it too).
  const tbs = caTbs(opts, serial, subjectDer, subjectDer, opts.key.type, []);
  const alg = signingAlgorithmFor(opts.key.type);
  const sig = await opts.key.sign(tbs, 'der');
  return assembleCertificate(tbs, alg.algIdDer, sig, serial, opts.notAfter);
}

/** A CA signed by an upstream CA; notAfter is capped at the upstream certificate's notAfter. */
export async function createIntermediateCa(
  opts: CaOptions & { upstream: UpstreamCa },
): Promise<IssuedCertificate> {
  const upDer = opts.upstream.certChainDer[0];
  if (!upDer) throw new InvalidArgumentError('upstream CA chain is empty');
  const up = parseCertificate(upDer, 'upstream CA certificate');
  const upType = upstreamSigningType(opts.upstream.key);
  const upKeyId = subjectKeyId(up) ?? keyIdFromSubjectPublicKey(up.spki.subjectPublicKey);
  const capped = { ...opts, notAfter: Math.min(opts.notAfter, up.notAfter) };
  const serial = randomSerial();
  const subjectDer = subjectFor(opts.subject, serial);
  const tbs = caTbs(capped, serial, subjectDer, up.subject, upType, [authorityKeyIdExt(upKeyId)]);
  const alg = signingAlgorithmFor(upType);
  const sig = sign(hashFor(upType), tbs, opts.upstream.key);
  return assembleCertificate(tbs, alg.algIdDer, sig, serial, capped.notAfter);
}

function caTbs(
  opts: CaOptions,
  serial: Uint8Array,
  subjectDer: Uint8Array,
  issuerDer: Uint8Array,
  signerType: KeyType,
  extra: Uint8Array[],
): Buffer {
  const td = TrustDomain.parse(opts.trustDomain);
  if (!(opts.notAfter > opts.notBefore))
    throw new InvalidArgumentError('CA notAfter must be after notBefore');
  const spki = readSpki(opts.key.publicKeyDer, readRoot(opts.key.publicKeyDer));
  return buildTbs({
    serial,
    algIdDer: signingAlgorithmFor(signerType).algIdDer,
    issuerDer,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    subjectDer,
    spkiDer: opts.key.publicKeyDer,
    extensions: [
      caKeyUsageExt,
      caBasicConstraintsExt(opts.pathLen),
      subjectKeyIdExt(keyIdFromSubjectPublicKey(spki.subjectPublicKey)),
      ...extra,
      subjectAltNameExt([td.id], [], false),
    ],
  });
}

function subjectFor(subject: DistinguishedName | undefined, serial: Uint8Array): Buffer {
  const decimal = BigInt('0x' + Buffer.from(serial).toString('hex')).toString(10);
  return encodeName(
    subject ?? [
      ['C', 'US'],
      ['O', 'Tessera'],
      ['serialNumber', decimal],
    ],
  );
}

/** Upstream keys come from files, so any RSA size ≥ 2048 is fine; EC must be P-256 or P-384. */
function upstreamSigningType(key: KeyObject): KeyType {
  const t = keyTypeOf(key);
  if (t) return t;
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && bits !== undefined && bits >= 2048) return 'rsa-2048';
  throw new InvalidArgumentError('upstream CA key must be EC P-256/P-384 or RSA ≥ 2048 bits');
}
