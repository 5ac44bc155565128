// Compiles agent config from file, environment and flags (later wins) into a frozen object.
import { InvalidArgumentError } from '../../core/errors.ts';
import {
  builtinNodeAttestors,
  configuredAgentNodeAttestors,
} from '../../plugins/node-attestors/catalog.ts';
import { checkTokenFilePaths } from '../cloud/token-file-paths.ts';
import { agentConfigSchema, type AgentConfigParsed } from './schema.ts';

export type AgentConfig = Readonly<AgentConfigParsed>;

export const agentEnv: Record<string, string> = {
  TESSERA_TRUST_DOMAIN: 'trust_domain',
  TESSERA_SERVER_ADDRESS: 'server_address',
  TESSERA_AGENT_SOCKET: 'socket_path',
  TESSERA_AGENT_DATA_DIR: 'data_dir',
  TESSERA_JOIN_TOKEN: 'join_token',
  TESSERA_LOG_LEVEL: 'log_level',
  TESSERA_LOG_FORMAT: 'log_format',
};

export function compileAgentConfig(
  file: Record<string, unknown>,
  env: Record<string, string | undefined>,
  flags: Record<string, unknown>,
  defaults: { dataDir: string; socketPath: string },
): AgentConfig {
  const merged: Record<string, unknown> = {
    data_dir: defaults.dataDir,
    socket_path: defaults.socketPath,
    ...file,
  };
  for (const [name, key] of Object.entries(agentEnv)) {
    const v = env[name];
    if (v !== undefined && v !== '') merged[key] = v;
  }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  const result = agentConfigSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join('.') || '(root)';
    // Absent: nothing at the issue's path (a nested key or list item of a value given as a
    // string, such as "a:1,b", is there: the string was given).
    let at: unknown = merged;
    for (const k of issue?.path ?? []) {
      if (at === null || typeof at !== 'object') break;
      at = (at as Record<PropertyKey, unknown>)[k];
    }
    const missing = issue && path !== '(root)' && at === undefined;
    const message = missing
      ? 'required'
      : issue?.code === 'unrecognized_keys'
        ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : (issue?.message ?? 'invalid');
    throw new InvalidArgumentError(`config: ${path}: ${message}`);
  }
  const c = result.data;
  if (configuredAgentNodeAttestors(c).length > 1) {
    const kinds = Object.keys(builtinNodeAttestors).join(' or ');
    throw new InvalidArgumentError(`config: use one node attestor: ${kinds}, not both`);
  }
  if (c.workload_api_max_connections_per_uid >= c.workload_api_max_connections) {
    throw new InvalidArgumentError(
      'config: workload_api_max_connections_per_uid: must be below workload_api_max_connections',
    );
  }
  if (c.workload_api_preface_timeout <= 0) {
    throw new InvalidArgumentError('config: workload_api_preface_timeout: must be positive');
  }
  const trustSources = [
    c.trust_bundle_file,
    c.trust_bundle_url,
    c.insecure_bootstrap ? 'x' : '',
  ].filter(Boolean);
  if (trustSources.length > 1) {
    throw new InvalidArgumentError(
      'config: use one of trust_bundle_file, trust_bundle_url and insecure_bootstrap',
    );
  }
  checkTokenFilePaths(c);
  return Object.freeze(c);
}
