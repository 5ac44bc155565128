// Wire format shared by the agent and server halves of x509pop.
import { PermissionDeniedError } from '../../../core/errors.ts';

/** Domain separation: the signed message is this context followed by the server's nonce. */
export const X509POP_CONTEXT = 'tessera x509pop challenge v1\n';
const MAX_CERTS = 8;

/** Payload: JSON {"certificates": [base64 DER, leaf first]}. */
export function encodeX509PopPayload(chainDer: readonly Uint8Array[]): Uint8Array {
  return Buffer.from(
    JSON.stringify({ certificates: chainDer.map((d) => Buffer.from(d).toString('base64')) }),
  );
}

export function parseX509PopPayload(payload: Uint8Array): Buffer[] {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new PermissionDeniedError('x509pop: payload is not valid JSON');
  }
  const certs = (doc as { certificates?: unknown })?.certificates;
  if (!Array.isArray(certs) || certs.length === 0 || certs.length > MAX_CERTS) {
    throw new PermissionDeniedError(`x509pop: payload must list 1..${MAX_CERTS} certificates`);
  }
  return certs.map((c) => {
    if (typeof c !== 'string')
      throw new PermissionDeniedError('x509pop: certificates must be base64 strings');
    return Buffer.from(c, 'base64');
  });
}
