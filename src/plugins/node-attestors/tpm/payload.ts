// Wire format of tpm attestation. Payload: JSON {"ek_cert", "ek_pub", "ak_pub"} (base64 of the EK
// certificate's DER and of the EK's and AK's TPM2B_PUBLIC). Challenge: the credential file
// tpm2_activatecredential reads (make-credential.ts). Response: the activated secret.
import { PermissionDeniedError } from '../../../core/errors.ts';

export interface TpmPayload {
  readonly ekCert: Buffer;
  readonly ekPub: Buffer;
  readonly akPub: Buffer;
}

const MAX_CERT_BYTES = 8 * 1024;
const MAX_PUBLIC_BYTES = 1024;

export function encodeTpmPayload(p: TpmPayload): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      ek_cert: p.ekCert.toString('base64'),
      ek_pub: p.ekPub.toString('base64'),
      ak_pub: p.akPub.toString('base64'),
    }),
  );
}

/** Untrusted, from the agent: shape and sizes only. */
export function parseTpmPayload(payload: Uint8Array): TpmPayload {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new PermissionDeniedError('tpm: payload is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new PermissionDeniedError('tpm: payload is not a JSON object');
  const d = doc as Record<string, unknown>;
  const field = (name: string, max: number): Buffer => {
    const v = d[name];
    if (typeof v !== 'string' || v === '' || v.length > Math.ceil(max / 3) * 4)
      throw new PermissionDeniedError(
        `tpm: payload ${name} must be base64 of at most ${max} bytes`,
      );
    return Buffer.from(v, 'base64');
  };
  return {
    ekCert: field('ek_cert', MAX_CERT_BYTES),
    ekPub: field('ek_pub', MAX_PUBLIC_BYTES),
    akPub: field('ak_pub', MAX_PUBLIC_BYTES),
  };
}
