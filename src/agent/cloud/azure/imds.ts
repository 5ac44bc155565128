// Azure IMDS managed identity, as MSAL (@azure/identity's ManagedIdentityCredential and
// DefaultAzureCredential) calls it when `AZURE_POD_IDENTITY_AUTHORITY_HOST` points here:
// `GET /metadata/identity/oauth2/token/?api-version=…&resource=…[&client_id=<server workload>]`
// (MSAL adds the trailing slash and lower-cases the URL). As on Azure, `Metadata: true` is
// required (400 with IMDS's JSON error otherwise) and a request relayed by a proxy is refused.
// The answer has IMDS's shape and types: numbers as strings, `expires_on` in epoch seconds.
import type {
  CloudEndpoint,
  CloudRequest,
  CloudResponse,
  CloudContext,
} from '../cloud-endpoint.ts';
import { proxyHeader } from '../cloud-token.ts';
import { azureError, azureJson, isAnswer, issue, readTokenAsk } from './token-request.ts';

export const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
const API_VERSION = /^\d{4}-\d{2}-\d{2}$/;

export interface AzureImdsOptions {
  /** The server workload of the system-assigned identity; "" = none. */
  readonly serverWorkload: string;
  readonly now?: () => number;
}

export function azureImdsEndpoint(o: AzureImdsOptions): CloudEndpoint {
  const now = o.now ?? Date.now;
  return {
    name: 'azure-imds',
    prefixes: [IMDS_TOKEN_PATH],
    handle: (req, ctx) => answer(o, now, req, ctx),
  };
}

/** The Metadata header and proxy checks both Azure endpoints make first; undefined = passed. */
export function metadataChecks(
  req: CloudRequest,
  ctx: CloudContext,
  endpoint: string,
): CloudResponse | undefined {
  if (req.headers['metadata'] !== 'true') {
    return azureError(400, 'invalid_request', 'Required metadata header not specified');
  }
  const proxied = proxyHeader(req);
  if (proxied) {
    ctx.log.warn({ endpoint, header: proxied }, 'refused a proxied metadata request');
    return azureError(
      400,
      'invalid_request',
      `Request with ${proxied} header is not allowed: the metadata endpoint serves local callers directly.`,
    );
  }
  return undefined;
}

async function answer(
  o: AzureImdsOptions,
  now: () => number,
  req: CloudRequest,
  ctx: CloudContext,
): Promise<CloudResponse> {
  if (req.path !== IMDS_TOKEN_PATH && req.path !== `${IMDS_TOKEN_PATH}/`) {
    return azureError(404, 'not_found', 'Not found.');
  }
  const refused = metadataChecks(req, ctx, 'azure-imds');
  if (refused) return refused;
  const ask = readTokenAsk(req, o.serverWorkload, API_VERSION);
  if (isAnswer(ask)) return ask;
  const t = await issue(req, ctx, 'azure-imds', ask, now());
  if (isAnswer(t)) return t;
  return azureJson({
    access_token: t.token,
    client_id: t.server,
    expires_in: String(t.expiresIn),
    expires_on: String(t.expiresOn),
    ext_expires_in: String(t.expiresIn),
    not_before: String(t.now),
    resource: ask.resource,
    token_type: 'Bearer',
  });
}
