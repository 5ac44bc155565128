// The TLS facts of a server workload (docs/injection.md, "TLS to the server workload"): whether
// it speaks TLS, the CA its certificate chains to, and whether the explicit proxy may terminate
// CONNECT to it. Untrusted, from the caller: the CA is bounded and must parse as certificates.
import { X509Certificate } from 'node:crypto';
import { type ServerProtocol, isCloudProtocol } from '../../core/access.ts';
import { type At, fieldError } from './access-fields.ts';

/** The most PEM text tls_ca may hold. */
export const MAX_TLS_CA_BYTES = 64 * 1024;
/** The most certificates tls_ca may hold. */
export const MAX_TLS_CA_CERTIFICATES = 32;

export interface TlsInput {
  tls: boolean;
  tlsCa: string;
  tlsDecrypt: boolean;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * The validated TLS fields: `https` implies `tls`; `tls_ca` needs TLS and holds PEM
 * certificates only (stored re-encoded, one after the other); `tls_decrypt` is for http and
 * https; cloud targets take none of them.
 */
export function checkTls(at: At, protocol: ServerProtocol, t: TlsInput): TlsInput {
  if (isCloudProtocol(protocol)) {
    if (t.tls || t.tlsCa !== '' || t.tlsDecrypt)
      throw fieldError(
        at,
        t.tlsDecrypt ? 'tls_decrypt' : t.tlsCa !== '' ? 'tls_ca' : 'tls',
        `${protocol} server workloads take no TLS settings: the cloud SDK talks to the agent`,
      );
    return { tls: false, tlsCa: '', tlsDecrypt: false };
  }
  const tls = t.tls || protocol === 'https';
  if (t.tlsDecrypt && protocol !== 'http' && protocol !== 'https')
    throw fieldError(at, 'tls_decrypt', `only http and https can be decrypted, not ${protocol}`);
  if (t.tlsCa === '') return { tls, tlsCa: '', tlsDecrypt: t.tlsDecrypt };
  if (!tls) throw fieldError(at, 'tls_ca', 'needs tls: a CA is only used to verify TLS');
  return { tls, tlsCa: checkCaPem(at, t.tlsCa), tlsDecrypt: t.tlsDecrypt };
}

/** PEM certificates, nothing else; returned re-encoded. */
export function checkCaPem(at: At, pem: string): string {
  if (Buffer.byteLength(pem) > MAX_TLS_CA_BYTES)
    throw fieldError(at, 'tls_ca', `larger than ${MAX_TLS_CA_BYTES} bytes`);
  const certs: string[] = [];
  let rest = pem;
  for (const m of pem.matchAll(PEM_BLOCK)) {
    const n = certs.length + 1;
    if (m[1] !== 'CERTIFICATE')
      throw fieldError(at, 'tls_ca', `block ${n} is a ${m[1]}, not a CERTIFICATE`);
    if (n > MAX_TLS_CA_CERTIFICATES)
      throw fieldError(at, 'tls_ca', `more than ${MAX_TLS_CA_CERTIFICATES} certificates`);
    try {
      certs.push(new X509Certificate(m[0]).toString());
    } catch (e) {
      throw fieldError(at, 'tls_ca', `certificate ${n} does not parse (${(e as Error).message})`);
    }
    rest = rest.replace(m[0], '');
  }
  if (certs.length === 0)
    throw fieldError(at, 'tls_ca', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  if (rest.trim() !== '') throw fieldError(at, 'tls_ca', 'holds text outside its PEM certificates');
  return certs.join('');
}
