// What Azure's managed-identity endpoints share: reading the token request (api-version,
// resource, which identity), picking the server workload, releasing its token and answering in
// the shapes MSAL parses (msal-node BaseManagedIdentitySource): `expires_on` in epoch seconds is
// what it reads (`expires_in` alone would make the token stale at once); errors are
// {error, error_description}. The identity: the system-assigned one is the server workload in
// `cloud.azure.server_workload` (when empty, the one azure server workload the caller is
// granted); a user-assigned one, selected by `client_id`, is the server
// workload of that name. Resource-id and object-id selectors have no Tessera meaning (400).
import { NAME_PATTERN } from '../../../core/access.ts';
import type { CloudContext, CloudRequest, CloudResponse } from '../cloud-endpoint.ts';
import { grantedServerWorkload, releaseToken, secondsLeft, type Failure } from '../cloud-token.ts';

/** Longest `resource` accepted. */
export const MAX_RESOURCE_BYTES = 1024;

export interface TokenAsk {
  /** "" = the system-assigned identity without a configured server workload. */
  readonly server: string;
  readonly resource: string;
}

/** The ask, or the 400 answer naming what is wrong. */
export function readTokenAsk(
  req: CloudRequest,
  defaultServer: string,
  apiVersions: RegExp,
): TokenAsk | CloudResponse {
  if (req.method !== 'GET') return azureError(405, 'invalid_request', 'Only GET is supported.');
  for (const k of new Set(req.query.keys())) {
    if (req.query.getAll(k).length > 1) {
      return azureError(
        400,
        'invalid_request',
        `Query parameter '${k.slice(0, 64)}' given more than once.`,
      );
    }
  }
  const version = req.query.get('api-version') ?? '';
  if (version === '') {
    return azureError(400, 'invalid_request', "Required query variable 'api-version' is missing.");
  }
  if (!apiVersions.test(version)) {
    return azureError(
      400,
      'invalid_request',
      `api-version '${version.slice(0, 32)}' is not supported.`,
    );
  }
  const resource = req.query.get('resource') ?? '';
  if (resource === '')
    return azureError(400, 'invalid_request', 'Required audience variable missing.');
  if (Buffer.byteLength(resource) > MAX_RESOURCE_BYTES || /[\u0000-\u001f\u007f]/.test(resource)) {
    return azureError(
      400,
      'invalid_request',
      `resource: at most ${MAX_RESOURCE_BYTES} bytes of printable characters.`,
    );
  }
  for (const k of ['mi_res_id', 'msi_res_id', 'object_id', 'principal_id']) {
    if (req.query.has(k)) {
      return azureError(
        400,
        'invalid_request',
        `Identity not found: '${k}' does not select a Tessera identity; use client_id=<server workload>.`,
      );
    }
  }
  const clientId = req.query.get('client_id');
  // "" = the system-assigned identity with no server workload configured: issue() asks which
  // one azure server workload the caller is granted.
  if (clientId === null) return { server: defaultServer, resource };
  if (Buffer.byteLength(clientId) > 63 || !NAME_PATTERN.test(clientId)) {
    return azureError(
      400,
      'invalid_request',
      'Identity not found: client_id must name a server workload (lowercase letters, digits, ".", "_", "-").',
    );
  }
  return { server: clientId, resource };
}

export interface IssuedToken {
  /** The server workload whose token it is (the asked one, or the granted one). */
  readonly server: string;
  readonly token: string;
  /** Epoch seconds. */
  readonly expiresOn: number;
  /** Seconds left. */
  readonly expiresIn: number;
  readonly now: number;
}

/** The server workload's token for the caller, or the error answer (logged by releaseToken). */
export async function issue(
  req: CloudRequest,
  ctx: CloudContext,
  endpoint: string,
  ask: TokenAsk,
  now: number,
): Promise<IssuedToken | CloudResponse> {
  const chosen =
    ask.server === ''
      ? await grantedServerWorkload(req, ctx, endpoint, 'azure', 'cloud.azure.server_workload')
      : ({ ok: true, server: ask.server } as const);
  if (!chosen.ok) return failure(chosen.why, chosen.message);
  const r = await releaseToken(req, ctx, endpoint, chosen.server);
  if (!r.ok) return failure(r.why, r.message);
  const expiresIn = secondsLeft(r.expiresAt, now);
  return {
    server: chosen.server,
    token: r.token,
    expiresIn,
    expiresOn: Math.floor(now / 1000) + expiresIn,
    now: Math.floor(now / 1000),
  };
}

/** Denied → 403; nothing to serve → 400 (Azure's "Identity not found"); the cloud down → 500. */
function failure(why: Failure, message: string): CloudResponse {
  switch (why) {
    case 'invalid':
      return azureError(400, 'invalid_request', message);
    case 'no-identity':
    case 'none':
      return azureError(400, 'invalid_request', `Identity not found: ${message}`);
    case 'denied':
      return azureError(403, 'access_denied', message);
    case 'unavailable':
      return azureError(500, 'unknown_error', message);
  }
}

export function isAnswer(v: object): v is CloudResponse {
  return 'status' in v && 'body' in v;
}

export function azureJson(body: unknown): CloudResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  };
}

export function azureError(status: number, error: string, description: string): CloudResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ error, error_description: description }),
  };
}
