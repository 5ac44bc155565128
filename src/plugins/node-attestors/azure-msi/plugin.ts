// azure_msi: both halves and their config. Server: `node_attestors.azure_msi` with the allowed
// `tenants` (each a `tenant_id` and the `resource` its tokens must be for), `jwks_url` (Entra's
// keys) and `allow_reattestation`. Agent: `azure_msi: { endpoint, resource, api_version }`.
import { z } from 'zod';
import {
  allowReattestationSetting,
  jwksSourceOf,
  jwksUrlSetting,
  metadataEndpointSetting,
} from '../cloud-config.ts';
import { metadataEndpoint } from '../metadata-http.ts';
import type { NodeAttestorPlugin } from '../node-attestor.ts';
import { azureMsiAgent } from './agent.ts';
import { AZURE_MSI_TYPE, DEFAULT_AZURE_RESOURCE, createAzureMsiAttestor } from './server.ts';

const resource = z.string().min(1).max(256).default(DEFAULT_AZURE_RESOURCE);

const serverSchema = z.strictObject({
  tenants: z
    .array(
      z.strictObject({
        tenant_id: z
          .string()
          .regex(/^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/, 'expected a tenant GUID')
          .transform((v) => v.toLowerCase()),
        resource,
      }),
    )
    .min(1)
    .max(100),
  /** Microsoft Entra's token signing keys. */
  jwks_url: jwksUrlSetting('https://login.microsoftonline.com/common/discovery/keys'),
  allow_reattestation: allowReattestationSetting,
});

const agentSchema = z.strictObject({
  endpoint: metadataEndpointSetting('http://169.254.169.254'),
  resource,
  api_version: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected YYYY-MM-DD')
    .default('2018-02-01'),
});

export const azureMsiPlugin: NodeAttestorPlugin<typeof serverSchema, typeof agentSchema> = {
  type: AZURE_MSI_TYPE,
  serverSchema,
  createServer: (config, deps) =>
    createAzureMsiAttestor({
      keys: jwksSourceOf(AZURE_MSI_TYPE, config.jwks_url, deps.now),
      tenants: config.tenants.map((t) => ({ tenantId: t.tenant_id, resource: t.resource })),
      allowReattestation: config.allow_reattestation,
      now: deps.now,
    }),
  agentSchema,
  createAgent: async (config) =>
    azureMsiAgent({
      endpoint: metadataEndpoint(config.endpoint, 'azure_msi.endpoint'),
      resource: config.resource,
      apiVersion: config.api_version,
    }),
};
