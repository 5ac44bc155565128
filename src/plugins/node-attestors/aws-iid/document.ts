// The EC2 instance identity document (JSON, as IMDS serves it at
// /latest/dynamic/instance-identity/document) and the agent's attestation payload around it.
import { PermissionDeniedError } from '../../../core/errors.ts';

export const MAX_DOCUMENT_BYTES = 16 * 1024;

export interface InstanceIdentity {
  readonly accountId: string;
  readonly region: string;
  readonly availabilityZone: string;
  readonly instanceId: string;
  readonly imageId: string;
  readonly instanceType: string;
}

/** Each field the attestor uses, with the shape AWS gives it (also safe in IDs and selectors). */
const FIELDS: Readonly<Record<keyof InstanceIdentity, RegExp>> = {
  accountId: /^\d{12}$/,
  region: /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/,
  availabilityZone: /^[a-z0-9-]{1,64}$/,
  instanceId: /^i-[0-9a-f]{8,32}$/,
  imageId: /^ami-[0-9a-f]{8,32}$/,
  instanceType: /^[a-z0-9.-]{1,64}$/,
};

const deny = (m: string) => new PermissionDeniedError(`aws_iid: ${m}`);

/** Payload: JSON {"document": <document text>, "pkcs7": <base64 PKCS#7, as IMDS serves it>}. */
export function encodeAwsIidPayload(document: string, pkcs7: string): Uint8Array {
  return Buffer.from(JSON.stringify({ document, pkcs7 }));
}

export function parseAwsIidPayload(payload: Uint8Array): { document: Buffer; pkcs7: Buffer } {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw deny('payload is not valid JSON');
  }
  const { document, pkcs7 } = (doc ?? {}) as { document?: unknown; pkcs7?: unknown };
  if (typeof document !== 'string' || typeof pkcs7 !== 'string')
    throw deny('payload must hold "document" and "pkcs7" strings');
  if (Buffer.byteLength(document) > MAX_DOCUMENT_BYTES)
    throw deny(`document is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  const b64 = pkcs7.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw deny('pkcs7 is not base64');
  return { document: Buffer.from(document, 'utf8'), pkcs7: Buffer.from(b64, 'base64') };
}

/** Parses the signed document; every field used must be present and well formed. */
export function parseIdentityDocument(content: Buffer): InstanceIdentity {
  let doc: unknown;
  try {
    doc = JSON.parse(content.toString('utf8'));
  } catch {
    throw deny('the signed document is not valid JSON');
  }
  if (doc === null || typeof doc !== 'object') throw deny('the signed document is not an object');
  const out: Record<string, string> = {};
  for (const [k, re] of Object.entries(FIELDS)) {
    const v = (doc as Record<string, unknown>)[k];
    if (typeof v !== 'string' || !re.test(v)) throw deny(`the signed document has no valid "${k}"`);
    out[k] = v;
  }
  return out as unknown as InstanceIdentity;
}
