// Built-in node attestors, listed explicitly: no discovery. Each kind is a folder with its server
// half, its agent half and their config schemas (node-attestor.ts); the composition roots build
// whatever the config names through this catalog and never branch on a type.
import { z } from 'zod';
import { joinTokenPlugin } from './join-token/plugin.ts';
import type {
  AgentNodeAttestor,
  NodeAttestor,
  NodeAttestorPlugin,
  NodeAttestorServerDeps,
} from './node-attestor.ts';
import { x509popPlugin } from './x509pop/plugin.ts';
import { awsIidPlugin } from './aws-iid/plugin.ts';
import { gcpIitPlugin } from './gcp-iit/plugin.ts';
import { azureMsiPlugin } from './azure-msi/plugin.ts';
import { k8sPsatPlugin } from './k8s-psat/plugin.ts';
import { tpmPlugin } from './tpm/plugin.ts';

export type {
  AgentNodeAttestor,
  ChallengeFn,
  NodeAttestation,
  NodeAttestor,
  NodeAttestorServerDeps,
} from './node-attestor.ts';
export { JOIN_TOKEN_TYPE } from './join-token/server.ts';
export { X509POP_TYPE } from './x509pop/server.ts';
export { AWS_IID_TYPE } from './aws-iid/server.ts';
export { GCP_IIT_TYPE } from './gcp-iit/server.ts';
export { AZURE_MSI_TYPE } from './azure-msi/server.ts';
export { K8S_PSAT_TYPE } from './k8s-psat/server.ts';
export { TPM_TYPE } from './tpm/server.ts';

export const builtinNodeAttestors: Readonly<Record<string, NodeAttestorPlugin>> = Object.freeze({
  [joinTokenPlugin.type]: joinTokenPlugin,
  [x509popPlugin.type]: x509popPlugin,
  [awsIidPlugin.type]: awsIidPlugin,
  [gcpIitPlugin.type]: gcpIitPlugin,
  [azureMsiPlugin.type]: azureMsiPlugin,
  [k8sPsatPlugin.type]: k8sPsatPlugin,
  [tpmPlugin.type]: tpmPlugin,
});

/** The server config's `node_attestors`: one optional key per kind; join_token on by default. */
export const nodeAttestorsServerSchema = z
  .strictObject({
    join_token: joinTokenPlugin.serverSchema.optional(),
    x509pop: x509popPlugin.serverSchema.optional(),
    aws_iid: awsIidPlugin.serverSchema.optional(),
    gcp_iit: gcpIitPlugin.serverSchema.optional(),
    azure_msi: azureMsiPlugin.serverSchema.optional(),
    k8s_psat: k8sPsatPlugin.serverSchema.optional(),
    tpm: tpmPlugin.serverSchema.optional(),
  })
  .prefault({ join_token: {} });

/** The agent config's node-attestor keys (at its top level): at most one is set. */
export const nodeAttestorsAgentShape = {
  join_token: joinTokenPlugin.agentSchema.default(''),
  x509pop: x509popPlugin.agentSchema.optional(),
  aws_iid: awsIidPlugin.agentSchema.optional(),
  gcp_iit: gcpIitPlugin.agentSchema.optional(),
  azure_msi: azureMsiPlugin.agentSchema.optional(),
  k8s_psat: k8sPsatPlugin.agentSchema.optional(),
  tpm: tpmPlugin.agentSchema.optional(),
};

function plugin(type: string): NodeAttestorPlugin {
  const p = Object.hasOwn(builtinNodeAttestors, type) ? builtinNodeAttestors[type] : undefined;
  // The config schemas above admit only built-in types, so this is a programming error.
  if (!p) throw new TypeError(`no built-in node attestor "${type}"`);
  return p;
}

/** Server halves of the enabled attestors (validated `node_attestors`), by type. */
export function createServerNodeAttestors(
  config: Readonly<Record<string, unknown>>,
  deps: NodeAttestorServerDeps,
): Map<string, NodeAttestor> {
  const m = new Map<string, NodeAttestor>();
  for (const [type, c] of Object.entries(config)) {
    if (c === undefined) continue;
    const a = plugin(type).createServer(c, deps);
    m.set(a.type, a);
  }
  return m;
}

/** The node-attestor kinds an agent config sets ("" and absent are unset). */
export function configuredAgentNodeAttestors(config: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(builtinNodeAttestors).filter((t) => {
    const v = config[t];
    return v !== undefined && v !== '';
  });
}

/** The agent half named by a validated agent config, or null when none is configured. */
export async function createAgentNodeAttestor(
  config: Readonly<Record<string, unknown>>,
): Promise<AgentNodeAttestor | null> {
  const [type] = configuredAgentNodeAttestors(config);
  return type === undefined ? null : plugin(type).createAgent(config[type]);
}
