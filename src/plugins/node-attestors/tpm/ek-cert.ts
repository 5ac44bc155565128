// The endorsement key certificate: issued by the TPM's manufacturer, it must chain to one of the
// configured manufacturer CAs and certify exactly the EK the agent presents. EK certificates are
// read from TPM NV memory, which pads them: only the DER's own length counts.
import { X509Certificate, createHash } from 'node:crypto';
import { PermissionDeniedError } from '../../../core/errors.ts';

/** The DER SEQUENCE at the start of `buf`, without NV padding after it. */
export function trimDer(buf: Buffer): Buffer {
  if (buf.length < 4 || buf[0] !== 0x30) return buf;
  const l = buf[1] as number;
  if (l < 0x80) return buf.subarray(0, 2 + l);
  const n = l & 0x7f;
  if (n < 1 || n > 3 || buf.length < 2 + n) return buf;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (buf[2 + i] as number);
  return buf.subarray(0, Math.min(buf.length, 2 + n + len));
}

export function parseEkCert(der: Buffer): X509Certificate {
  try {
    return new X509Certificate(trimDer(der));
  } catch {
    throw new PermissionDeniedError('tpm: the EK certificate could not be parsed');
  }
}

/** Finds the manufacturer CA the certificate chains to (directly or through one of `inters`). */
export function verifyEkChain(
  cert: X509Certificate,
  roots: readonly X509Certificate[],
  intermediates: readonly X509Certificate[],
  now: number,
): X509Certificate {
  const valid = (c: X509Certificate) =>
    Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
  if (!valid(cert))
    throw new PermissionDeniedError('tpm: the EK certificate is outside its validity period');
  let current = cert;
  for (let depth = 0; depth < 4; depth++) {
    const root = roots.find(
      (r) => current.checkIssued(r) && current.verify(r.publicKey) && valid(r),
    );
    if (root) return root;
    const next = intermediates.find(
      (c) =>
        c !== current && c.ca && valid(c) && current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (!next) break;
    current = next;
  }
  throw new PermissionDeniedError('tpm: the EK certificate does not chain to a manufacturer CA');
}

/** TCG EK certificate subjectAltName attributes (2.23.133.2.1-3), as Node renders them. */
export function tpmDeviceInfo(cert: X509Certificate): {
  manufacturer?: string;
  model?: string;
  version?: string;
} {
  const san = cert.subjectAltName ?? '';
  const get = (attr: string): string | undefined => {
    const m = new RegExp(`tcg-at-tpm${attr}=([A-Za-z0-9:._ -]{1,64})`).exec(san);
    return m?.[1];
  };
  const out: { manufacturer?: string; model?: string; version?: string } = {};
  const manufacturer = get('Manufacturer');
  const model = get('Model');
  const version = get('Version');
  if (manufacturer) out.manufacturer = manufacturer;
  if (model) out.model = model;
  if (version) out.version = version;
  return out;
}

export const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const sha1Hex = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');
