// Leaf X509-SVID issuance from SPIRE's template (X509-SVID spec §4, credtemplate/builder.go):
// one URI SAN + optional DNS SANs, cA=false, critical KeyUsage digitalSignature|keyEncipherment|
// keyAgreement, EKU serverAuth+clientAuth, SKID, AKID = CA SKID.
//
// Subject: C=US, O=Tessera, plus CN = the first DNS name when there is one (SPIRE's rule; a DNS
// name longer than the 64-character CN limit is left out of the subject and stays in the SAN).
// The subject is therefore never empty, so the SAN extension is not critical.
//
// This is the hot path: everything that depends only on the CA is computed once per CA cert
// (WeakMap keyed by the DER array), and the TBSCertificate is assembled with the small DER writer
// and signed synchronously with the CA KeyObject.
import type { KeyObject } from 'node:crypto';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.ts';
import { parseLeafId, type SpiffeId } from '../../core/spiffe-id.ts';
import { readRoot } from '../der/der-reader.ts';
import type { ManagedKey } from '../key-manager.ts';
import { parseCertificate, subjectKeyId } from './certificate.ts';
import {
  assembleCertificate,
  buildTbs,
  randomSerial,
  type IssuedCertificate,
} from './certificate-builder.ts';
import {
  authorityKeyIdExt,
  keyIdFromSubjectPublicKey,
  leafBasicConstraintsExt,
  leafKeyUsageExt,
  serverClientEkuExt,
  subjectAltNameExt,
  subjectKeyIdExt,
} from './extensions.ts';
import { encodeName } from './name.ts';
import { signingAlgorithmFor } from './signature-algorithm.ts';
import { readSpki } from './spki.ts';

export interface IssueX509SvidOptions {
  readonly ca: { readonly certDer: Uint8Array; readonly key: ManagedKey };
  /** The leaf public key: a KeyObject, or SPKI DER as returned by parseCsr (already validated). */
  readonly subjectPublicKey: KeyObject | Uint8Array;
  readonly spiffeId: string | SpiffeId;
  readonly dnsNames?: readonly string[];
  /** Epoch ms; the service passes now − 10 s for clock skew, as SPIRE does. */
  readonly notBefore: number;
  /** Epoch ms; capped at the CA certificate's notAfter (a leaf cannot outlive its CA). */
  readonly notAfter: number;
}

interface CaTemplate {
  readonly key: ManagedKey;
  readonly issuerDer: Uint8Array;
  readonly akidExt: Uint8Array;
  readonly algIdDer: Uint8Array;
  readonly notAfter: number;
}

const templates = new WeakMap<Uint8Array, CaTemplate>();
const DEFAULT_SUBJECT = encodeName([
  ['C', 'US'],
  ['O', 'Tessera'],
]);
const DNS_RE =
  /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Issues with the CA key's synchronous signer (local keys). The hot path. */
export function issueX509SvidSync(opts: IssueX509SvidOptions): IssuedCertificate {
  const signSync = opts.ca.key.signSync;
  if (!signSync)
    throw new FailedPreconditionError(`CA key "${opts.ca.key.ref}" cannot sign synchronously`);
  const l = leafTbs(opts);
  return assembleCertificate(l.tbs, l.algIdDer, signSync(l.tbs, 'der'), l.serial, l.notAfter);
}

/** Issues with any ManagedKey (local or KMS). Also used for agent and server SVIDs. */
export async function issueX509Svid(opts: IssueX509SvidOptions): Promise<IssuedCertificate> {
  const l = leafTbs(opts);
  const key = opts.ca.key;
  const sig = key.signSync ? key.signSync(l.tbs, 'der') : await key.sign(l.tbs, 'der');
  return assembleCertificate(l.tbs, l.algIdDer, sig, l.serial, l.notAfter);
}

export const issueAgentOrServerSvid = issueX509Svid;

interface LeafTbs {
  readonly tbs: Buffer;
  readonly algIdDer: Uint8Array;
  readonly serial: Uint8Array;
  readonly notAfter: number;
}

function leafTbs(opts: IssueX509SvidOptions): LeafTbs {
  const t = caTemplate(opts.ca.certDer, opts.ca.key);
  const id = typeof opts.spiffeId === 'string' ? parseLeafId(opts.spiffeId) : opts.spiffeId;
  if (id.isTrustDomainId)
    throw new InvalidArgumentError('an X509-SVID needs a SPIFFE ID with a path');
  const dnsNames = opts.dnsNames ?? [];
  for (const d of dnsNames) {
    if (d.length > 253 || !DNS_RE.test(d))
      throw new InvalidArgumentError(`invalid DNS name "${d.slice(0, 80)}"`);
  }
  const spkiDer = leafSpkiDer(opts.subjectPublicKey);
  const spki = readSpki(spkiDer, readRoot(spkiDer));
  const notAfter = Math.min(opts.notAfter, t.notAfter);
  if (!(notAfter > opts.notBefore))
    throw new InvalidArgumentError('SVID notAfter must be after notBefore');
  const first = dnsNames[0];
  const serial = randomSerial();
  const tbs = buildTbs({
    serial,
    algIdDer: t.algIdDer,
    issuerDer: t.issuerDer,
    notBefore: opts.notBefore,
    notAfter,
    subjectDer:
      first && first.length <= 64
        ? encodeName([
            ['C', 'US'],
            ['O', 'Tessera'],
            ['CN', first],
          ])
        : DEFAULT_SUBJECT,
    spkiDer,
    extensions: [
      leafKeyUsageExt,
      serverClientEkuExt,
      leafBasicConstraintsExt,
      subjectKeyIdExt(keyIdFromSubjectPublicKey(spki.subjectPublicKey)),
      t.akidExt,
      subjectAltNameExt([id.toString()], dnsNames, false),
    ],
  });
  return { tbs, algIdDer: t.algIdDer, serial, notAfter };
}

function leafSpkiDer(k: KeyObject | Uint8Array): Uint8Array {
  if (k instanceof Uint8Array) return k;
  if (k.type !== 'public') throw new InvalidArgumentError('subjectPublicKey must be a public key');
  if (k.asymmetricKeyType === 'rsa' && (k.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new InvalidArgumentError('RSA keys must be at least 2048 bits');
  }
  return k.export({ type: 'spki', format: 'der' });
}

function caTemplate(certDer: Uint8Array, key: ManagedKey): CaTemplate {
  const cached = templates.get(certDer);
  if (cached && cached.key === key) return cached;
  const ca = parseCertificate(certDer, 'CA certificate');
  if (!Buffer.from(ca.spki.der).equals(key.publicKeyDer)) {
    throw new InvalidArgumentError(`CA key "${key.ref}" does not match the CA certificate`);
  }
  const skid = subjectKeyId(ca) ?? keyIdFromSubjectPublicKey(ca.spki.subjectPublicKey);
  const t: CaTemplate = {
    key,
    issuerDer: ca.subject,
    akidExt: authorityKeyIdExt(skid),
    algIdDer: signingAlgorithmFor(key.type).algIdDer,
    notAfter: ca.notAfter,
  };
  templates.set(certDer, t);
  return t;
}
