// Agent half of gcp_iit: the default service account's identity token from the GCE metadata
// server, for the configured audience, with the instance details (format=full).
import { InvalidArgumentError } from '../../../core/errors.ts';
import { metadataRequest } from '../metadata-http.ts';
import type { AgentNodeAttestor } from '../node-attestor.ts';
import { GCP_IIT_TYPE } from './server.ts';

export async function fetchGceIdentityToken(endpoint: URL, audience: string): Promise<string> {
  const url = new URL('/computeMetadata/v1/instance/service-accounts/default/identity', endpoint);
  url.searchParams.set('audience', audience);
  url.searchParams.set('format', 'full');
  const token = await metadataRequest('GCE metadata identity token', url, {
    headers: { 'Metadata-Flavor': 'Google' },
  });
  return token.trim();
}

export function gcpIitAgent(endpoint: URL, audience: string): AgentNodeAttestor {
  return {
    type: GCP_IIT_TYPE,
    canReattest: true,
    payload: async () => Buffer.from(await fetchGceIdentityToken(endpoint, audience), 'utf8'),
    answer: () => {
      throw new InvalidArgumentError('gcp_iit attestation takes no challenge');
    },
  };
}
