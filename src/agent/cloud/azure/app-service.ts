// App Service managed identity, as MSAL calls it when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`
// are set: `GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=…[&client_id=…]` with
// `X-IDENTITY-HEADER: <IDENTITY_HEADER>`. The header is the caller's own secret
// (identity-header.ts), checked against the attested caller in constant time; it is fetched by
// `tessera cloud env` from `GET /tessera/azure/identity-header` (with `Metadata: true`, so a
// forged request cannot read it). The 2019-08-01 answer: {access_token, expires_on (epoch
// seconds, a string), resource, token_type, client_id}.
import type {
  CloudContext,
  CloudEndpoint,
  CloudRequest,
  CloudResponse,
} from '../cloud-endpoint.ts';
import { proxyHeader } from '../cloud-token.ts';
import { identityHeaderFor, identityHeaderMatches } from './identity-header.ts';
import { metadataChecks } from './imds.ts';
import { azureError, azureJson, isAnswer, issue, readTokenAsk } from './token-request.ts';

export const APP_SERVICE_PATH = '/msi/token';
export const IDENTITY_HEADER_PATH = '/tessera/azure/identity-header';
const API_VERSION = /^2019-08-01$/;

export interface AzureAppServiceOptions {
  /** The server workload of the system-assigned identity; "" = none. */
  readonly serverWorkload: string;
  /** The identity-header key (identity-header.ts). */
  readonly headerKey: Buffer;
  readonly now?: () => number;
}

export function azureAppServiceEndpoint(o: AzureAppServiceOptions): CloudEndpoint {
  const now = o.now ?? Date.now;
  return {
    name: 'azure-app-service',
    prefixes: [APP_SERVICE_PATH, IDENTITY_HEADER_PATH],
    handle: (req, ctx) =>
      req.path === IDENTITY_HEADER_PATH ? headerAnswer(o, req, ctx) : tokenAnswer(o, now, req, ctx),
  };
}

async function tokenAnswer(
  o: AzureAppServiceOptions,
  now: () => number,
  req: CloudRequest,
  ctx: CloudContext,
): Promise<CloudResponse> {
  if (req.path !== APP_SERVICE_PATH && req.path !== `${APP_SERVICE_PATH}/`) {
    return azureError(404, 'not_found', 'Not found.');
  }
  const presented = req.headers['x-identity-header'];
  if (typeof presented !== 'string' || presented === '') {
    return azureError(400, 'invalid_request', 'Required header X-IDENTITY-HEADER not specified.');
  }
  const proxied = proxyHeader(req);
  if (proxied) {
    ctx.log.warn(
      { endpoint: 'azure-app-service', header: proxied },
      'refused a proxied metadata request',
    );
    return azureError(400, 'invalid_request', `Request with ${proxied} header is not allowed.`);
  }
  const ask = readTokenAsk(req, o.serverWorkload, API_VERSION);
  if (isAnswer(ask)) return ask;
  const caller = await req.caller().catch((e: unknown) => e as Error);
  if (
    caller instanceof Error ||
    !identityHeaderMatches(o.headerKey, caller.process.uid, presented)
  ) {
    ctx.log.warn(
      {
        endpoint: 'azure-app-service',
        uid: caller instanceof Error ? undefined : caller.process.uid,
      },
      caller instanceof Error
        ? `caller not attested: ${caller.message}`
        : "X-IDENTITY-HEADER is not the caller's",
    );
    return azureError(401, 'unauthorized', 'X-IDENTITY-HEADER does not match.');
  }
  const t = await issue(req, ctx, 'azure-app-service', ask, now());
  if (isAnswer(t)) return t;
  return azureJson({
    access_token: t.token,
    expires_on: String(t.expiresOn),
    resource: ask.resource,
    token_type: 'Bearer',
    client_id: t.server,
  });
}

async function headerAnswer(
  o: AzureAppServiceOptions,
  req: CloudRequest,
  ctx: CloudContext,
): Promise<CloudResponse> {
  if (req.method !== 'GET') return azureError(405, 'invalid_request', 'Only GET is supported.');
  const refused = metadataChecks(req, ctx, 'azure-app-service');
  if (refused) return refused;
  const caller = await req.caller().catch((e: unknown) => e as Error);
  if (caller instanceof Error) {
    ctx.log.warn({ endpoint: 'azure-app-service' }, `identity header refused: ${caller.message}`);
    return azureError(403, 'access_denied', caller.message);
  }
  return {
    status: 200,
    headers: { 'content-type': 'text/plain' },
    body: identityHeaderFor(o.headerKey, caller.process.uid),
  };
}
