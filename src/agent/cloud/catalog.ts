// The cloud endpoints the agent serves on `cloud.listen` (docs/cloud-credentials.md). One line
// per endpoint; each lives in its cloud's folder.
import type { CloudEndpoint } from './cloud-endpoint.ts';
import { awsContainerEndpoint } from './aws/container-endpoint.ts';
import type { ContainerTokens } from './aws/container-tokens.ts';
import { awsImdsEndpoint } from './aws/imds-endpoint.ts';

/** What endpoints need beyond the per-request context, made once at agent start. */
export interface CloudEndpointDeps {
  readonly awsContainerTokens: ContainerTokens;
}

export function cloudEndpoints(d: CloudEndpointDeps): CloudEndpoint[] {
  return [awsImdsEndpoint(), awsContainerEndpoint(d.awsContainerTokens)];
}
