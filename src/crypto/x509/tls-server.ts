// Certificates of the credential-injection proxy's TLS interception (docs/injection.md, "Explicit
// HTTP proxy"): a self-signed proxy CA that clients install in their trust store, and short-lived
// TLS server certificates it issues for exactly one hostname (or IP address) each. Unlike the
// SPIFFE CA (ca.ts) the proxy CA names no trust domain: it vouches for hostnames, nothing else.
//
// The CA is constrained to what it is for: pathLen 0 (it issues leaves only) and, on every leaf,
// the EKU serverAuth alone, so a proxy leaf can never authenticate a client anywhere.
import { isIP } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';
import { ctx, oid, seq } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';
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
  caBasicConstraintsExt,
  caKeyUsageExt,
  extension,
  keyIdFromSubjectPublicKey,
  leafBasicConstraintsExt,
  leafKeyUsageExt,
  subjectKeyIdExt,
} from './extensions.ts';
import { encodeName } from './name.ts';
import { signingAlgorithmFor } from './signature-algorithm.ts';
import { readSpki } from './spki.ts';

const serverAuthEkuExt = extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth)));
const DNS_RE =
  /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** The proxy CA: `CN=<commonName>, O=Tessera`, cA with pathLen 0, keyCertSign|cRLSign. */
export async function createProxyCa(o: {
  readonly key: ManagedKey;
  readonly commonName: string;
  readonly notBefore: number;
  readonly notAfter: number;
}): Promise<IssuedCertificate> {
  const serial = randomSerial();
  const subject = encodeName([
    ['O', 'Tessera'],
    ['CN', o.commonName],
  ]);
  const spki = readSpki(o.key.publicKeyDer, readRoot(o.key.publicKeyDer));
  const alg = signingAlgorithmFor(o.key.type);
  const tbs = buildTbs({
    serial,
    algIdDer: alg.algIdDer,
    issuerDer: subject,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    subjectDer: subject,
    spkiDer: o.key.publicKeyDer,
    extensions: [
      caKeyUsageExt,
      caBasicConstraintsExt(0),
      subjectKeyIdExt(keyIdFromSubjectPublicKey(spki.subjectPublicKey)),
    ],
  });
  const sig = await o.key.sign(tbs, 'der');
  return assembleCertificate(tbs, alg.algIdDer, sig, serial, o.notAfter);
}

/**
 * A TLS server certificate for one host: a DNS name (SAN dNSName, no wildcard) or an IP literal
 * (SAN iPAddress). notAfter is capped at the CA's.
 */
export async function issueTlsServerCertificate(o: {
  readonly ca: { readonly certDer: Uint8Array; readonly key: ManagedKey };
  readonly subjectPublicKey: KeyObject;
  readonly host: string;
  readonly notBefore: number;
  readonly notAfter: number;
}): Promise<IssuedCertificate> {
  const ca = parseCertificate(o.ca.certDer, 'proxy CA certificate');
  if (!Buffer.from(ca.spki.der).equals(o.ca.key.publicKeyDer)) {
    throw new InvalidArgumentError('the proxy CA key does not match its certificate');
  }
  const spkiDer = o.subjectPublicKey.export({ type: 'spki', format: 'der' });
  const spki = readSpki(spkiDer, readRoot(spkiDer));
  const caKeyId = subjectKeyId(ca) ?? keyIdFromSubjectPublicKey(ca.spki.subjectPublicKey);
  const notAfter = Math.min(o.notAfter, ca.notAfter);
  const alg = signingAlgorithmFor(o.ca.key.type);
  const serial = randomSerial();
  const tbs = buildTbs({
    serial,
    algIdDer: alg.algIdDer,
    issuerDer: ca.subject,
    notBefore: o.notBefore,
    notAfter,
    subjectDer: encodeName([
      ['O', 'Tessera'],
      ['CN', o.host.length <= 64 ? o.host : 'tessera-proxy'],
    ]),
    spkiDer,
    extensions: [
      leafKeyUsageExt,
      serverAuthEkuExt,
      leafBasicConstraintsExt,
      subjectKeyIdExt(keyIdFromSubjectPublicKey(spki.subjectPublicKey)),
      authorityKeyIdExt(caKeyId),
      hostSanExt(o.host),
    ],
  });
  const sig = await o.ca.key.sign(tbs, 'der');
  return assembleCertificate(tbs, alg.algIdDer, sig, serial, notAfter);
}

function hostSanExt(host: string): Buffer {
  const v = isIP(host);
  if (v !== 0) return extension(OID.subjectAltName, false, seq(ctx(7, false, ipBytes(host, v))));
  if (host.length > 253 || !DNS_RE.test(host)) {
    throw new InvalidArgumentError(`not a hostname: "${host.slice(0, 80)}"`);
  }
  return extension(OID.subjectAltName, false, seq(ctx(2, false, Buffer.from(host, 'latin1'))));
}

function ipBytes(ip: string, version: number): Buffer {
  if (version === 4) return Buffer.from(ip.split('.').map(Number));
  if (ip.includes('.')) throw new InvalidArgumentError(`IPv4-mapped address not supported: ${ip}`);
  // Expand "::" then write the eight 16-bit groups.
  const [head = '', tail] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
