// The cloud endpoints the agent serves on `cloud.listen` (docs/cloud-credentials.md). One line
// per endpoint; each lives in its cloud's folder.
import type { AgentConfig } from '../config/compile.ts';
import { azureAppServiceEndpoint } from './azure/app-service.ts';
import { azureImdsEndpoint } from './azure/imds.ts';
import type { CloudEndpoint } from './cloud-endpoint.ts';
import { awsContainerEndpoint } from './aws/container-endpoint.ts';
import type { ContainerTokens } from './aws/container-tokens.ts';
import { awsImdsEndpoint } from './aws/imds-endpoint.ts';
import { gceMetadataEndpoint } from './gcp/metadata-server.ts';

/** What endpoints need beyond the per-request context, made once at agent start. */
export interface CloudEndpointsOptions {
  readonly cloud: AgentConfig['cloud'];
  /** The Azure App Service identity-header key (azure/identity-header.ts). */
  readonly azureHeaderKey: Buffer;
  readonly awsContainerTokens: ContainerTokens;
}

export function cloudEndpoints(o: CloudEndpointsOptions): CloudEndpoint[] {
  const { gcp, azure } = o.cloud;
  return [
    awsImdsEndpoint(),
    awsContainerEndpoint(o.awsContainerTokens),
    gceMetadataEndpoint({
      serverWorkload: gcp.server_workload,
      projectId: gcp.project_id,
      projectNumber: gcp.project_number,
      email: gcp.email,
    }),
    azureImdsEndpoint({ serverWorkload: azure.server_workload }),
    azureAppServiceEndpoint({ serverWorkload: azure.server_workload, headerKey: o.azureHeaderKey }),
  ];
}
