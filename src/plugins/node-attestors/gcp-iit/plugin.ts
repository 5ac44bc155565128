// gcp_iit: both halves and their config. Server: `node_attestors.gcp_iit` with the allowed
// `project_ids`, `audience`, `jwks_url` (Google's keys) and `allow_reattestation`. Agent:
// `gcp_iit: { endpoint, audience }` (metadata server, default http://metadata.google.internal).
import { z } from 'zod';
import {
  allowReattestationSetting,
  jwksSourceOf,
  jwksUrlSetting,
  metadataEndpointSetting,
} from '../cloud-config.ts';
import { metadataEndpoint } from '../metadata-http.ts';
import type { NodeAttestorPlugin } from '../node-attestor.ts';
import { gcpIitAgent } from './agent.ts';
import { createGcpIitAttestor, DEFAULT_GCP_AUDIENCE, GCP_IIT_TYPE } from './server.ts';

const audience = z.string().min(1).max(256).default(DEFAULT_GCP_AUDIENCE);

const serverSchema = z.strictObject({
  /** GCP projects whose instances may attest. */
  project_ids: z.array(z.string().min(1).max(64)).min(1).max(1000),
  /** The audience agents request their token for. */
  audience,
  /** Google's token signing keys. */
  jwks_url: jwksUrlSetting('https://www.googleapis.com/oauth2/v3/certs'),
  allow_reattestation: allowReattestationSetting,
});

const agentSchema = z.strictObject({
  endpoint: metadataEndpointSetting('http://metadata.google.internal'),
  audience,
});

export const gcpIitPlugin: NodeAttestorPlugin<typeof serverSchema, typeof agentSchema> = {
  type: GCP_IIT_TYPE,
  serverSchema,
  createServer: (config, deps) =>
    createGcpIitAttestor({
      keys: jwksSourceOf(GCP_IIT_TYPE, config.jwks_url, deps.now),
      audience: config.audience,
      projectIds: new Set(config.project_ids),
      allowReattestation: config.allow_reattestation,
      now: deps.now,
    }),
  agentSchema,
  createAgent: async (config) =>
    gcpIitAgent(metadataEndpoint(config.endpoint, 'gcp_iit.endpoint'), config.audience),
};
