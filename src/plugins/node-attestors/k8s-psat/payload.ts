// Wire format shared by the agent and server halves of k8s_psat: JSON {"cluster", "token"}, as
// SPIRE's PSAT attestation data.
import { PermissionDeniedError } from '../../../core/errors.ts';

/** Projected tokens are about 1 KiB; anything far larger is not one. */
export const MAX_PSAT_TOKEN_BYTES = 16 * 1024;
/** Cluster names are path segments of the agent ID: SPIFFE path characters, bounded. */
export const CLUSTER_NAME_RE = /^[A-Za-z0-9._-]{1,63}$/;

export interface PsatPayload {
  readonly cluster: string;
  readonly token: string;
}

export function encodePsatPayload(p: PsatPayload): Uint8Array {
  return Buffer.from(JSON.stringify({ cluster: p.cluster, token: p.token }));
}

/** Untrusted, from the agent: shape and sizes only; the token is verified by the server. */
export function parsePsatPayload(payload: Uint8Array): PsatPayload {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new PermissionDeniedError('k8s_psat: payload is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new PermissionDeniedError('k8s_psat: payload is not a JSON object');
  const { cluster, token } = doc as { cluster?: unknown; token?: unknown };
  if (typeof cluster !== 'string' || !CLUSTER_NAME_RE.test(cluster))
    throw new PermissionDeniedError(
      'k8s_psat: payload cluster must be 1..63 characters of [A-Za-z0-9._-]',
    );
  if (typeof token !== 'string' || token === '')
    throw new PermissionDeniedError('k8s_psat: payload has no token');
  if (token.length > MAX_PSAT_TOKEN_BYTES)
    throw new PermissionDeniedError(`k8s_psat: token is larger than ${MAX_PSAT_TOKEN_BYTES} bytes`);
  return { cluster, token };
}
