// azure-federated: a Microsoft Entra ID access token for the client, from the client-credentials
// grant of an app registration (or user-assigned managed identity) whose federated identity
// credential trusts Tessera's issuer with subject = the client's SPIFFE ID. The client's
// JWT-SVID (aud `api://AzureADTokenExchange`) is the client assertion. Entra supports RS256
// only: the server's JWT authority must use an RSA key (jwt.key_type rsa-2048). Tokens are kept
// per client until shortly before the SDKs' 5-minute expiry window. Setup in
// docs/cloud-credentials.md.
import { z } from 'zod';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { ClientCredentialCache } from '../shared/client-cache.ts';
import type { ExpiringToken } from '../shared/oauth-answer.ts';
import { endpointUrl } from '../shared/endpoint-url.ts';
import { requestEntraToken } from './token-request.ts';

export const AZURE_FEDERATED_TYPE = 'azure-federated';
/** The assertion only has to live through the token request. */
export const ASSERTION_TTL_SECONDS = 300;

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const schema = z.strictObject({
  /** The directory (tenant) ID, or a verified domain of the tenant. */
  tenant_id: z
    .string()
    .max(253)
    .regex(
      /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/,
      'must be a tenant ID (GUID) or domain name',
    ),
  /** The application (client) ID of the app registration or user-assigned managed identity. */
  client_id: z.string().regex(GUID, 'must be an application (client) ID (a GUID)'),
  /** One resource's `.default` scope, e.g. `https://storage.azure.com/.default`. */
  scope: z
    .string()
    .max(512)
    .regex(
      /^[\x21-\x7e]+\/\.default$/,
      'must be a resource\'s ".default" scope (client credentials)',
    ),
  audience: z.string().min(1).max(256).default('api://AzureADTokenExchange'),
  authority_host: endpointUrl.default('https://login.microsoftonline.com'),
  /** Milliseconds for the whole token request. */
  timeout_ms: z.number().int().min(100).max(60_000).default(10_000),
});

export const azureFederatedPlugin: CredentialProviderPlugin<typeof schema> = {
  type: AZURE_FEDERATED_TYPE,
  schema,
  secretsOf: () => [],
  create(record, config, deps) {
    const cache = new ClientCredentialCache<ExpiringToken>(deps.now);
    const fetchFor = async (spiffeId: string): Promise<ExpiringToken> => {
      const svid = await deps.minting.jwtSvid(spiffeId, [config.audience], ASSERTION_TTL_SECONDS);
      return requestEntraToken({
        authorityHost: config.authority_host,
        tenantId: config.tenant_id,
        clientId: config.client_id,
        scope: config.scope,
        assertion: svid.token,
        timeoutMs: config.timeout_ms,
        now: deps.now(),
        fetch: deps.fetch,
      });
    };
    return {
      type: AZURE_FEDERATED_TYPE,
      name: record.name,
      async release(req) {
        const id = req.client.spiffeId;
        const t = await cache.get(id, () => fetchFor(id));
        return { value: { kind: 'token', token: t.token }, expiresAt: t.expiresAt, leaseId: '' };
      },
      async close() {
        cache.clear();
      },
    };
  },
};
