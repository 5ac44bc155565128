// Agent half of azure_msi: the VM's managed-identity access token from Azure IMDS for the
// configured resource.
import { InvalidArgumentError, UnavailableError } from '../../../core/errors.ts';
import { metadataRequest } from '../metadata-http.ts';
import type { AgentNodeAttestor } from '../node-attestor.ts';
import { AZURE_MSI_TYPE } from './server.ts';

export interface AzureMsiAgentOptions {
  readonly endpoint: URL;
  readonly resource: string;
  readonly apiVersion: string;
}

export async function fetchAzureMsiToken(o: AzureMsiAgentOptions): Promise<string> {
  const url = new URL('/metadata/identity/oauth2/token', o.endpoint);
  url.searchParams.set('api-version', o.apiVersion);
  url.searchParams.set('resource', o.resource);
  const body = await metadataRequest('Azure IMDS managed identity token', url, {
    headers: { Metadata: 'true' },
  });
  let token: unknown;
  try {
    token = (JSON.parse(body) as { access_token?: unknown } | null)?.access_token;
  } catch {
    token = undefined;
  }
  if (typeof token !== 'string' || token === '')
    throw new UnavailableError('Azure IMDS managed identity token: response has no access_token');
  return token;
}

export function azureMsiAgent(o: AzureMsiAgentOptions): AgentNodeAttestor {
  return {
    type: AZURE_MSI_TYPE,
    canReattest: true,
    payload: async () => Buffer.from(await fetchAzureMsiToken(o), 'utf8'),
    answer: () => {
      throw new InvalidArgumentError('azure_msi attestation takes no challenge');
    },
  };
}
