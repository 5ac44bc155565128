// The agent's settings for `tessera agent run`: the config file, the environment and the flags,
// compiled into one AgentConfig (agent/config/compile.ts).
import { homedir } from 'node:os';
import { DEFAULT_AGENT_SOCKET, defaultAgentDataDir } from '../../core/defaults.ts';
import { parseConfigYaml, readConfigFile } from '../../plugins/config-file.ts';
import { type AgentConfig, compileAgentConfig } from '../config/compile.ts';

export interface AgentRunFlags {
  config?: string;
  server?: string;
  trustDomain?: string;
  socket?: string;
  dataDir?: string;
  joinToken?: string;
  x509popCert?: string;
  x509popKey?: string;
  trustBundle?: string;
  trustBundleUrl?: string;
  insecureBootstrap?: boolean;
  logFormat?: string;
}

/** Reads the config file and environment and applies flags. Used by `tessera agent run`. */
export function loadAgentConfig(flags: AgentRunFlags, env = process.env): AgentConfig {
  let file: Record<string, unknown> = {};
  if (flags.config) {
    file = parseConfigYaml(readConfigFile(flags.config), flags.config);
  }
  const x509pop =
    flags.x509popCert || flags.x509popKey
      ? { cert_file: flags.x509popCert, key_file: flags.x509popKey }
      : undefined;
  return compileAgentConfig(
    file,
    env,
    {
      server_address: flags.server,
      trust_domain: flags.trustDomain,
      socket_path: flags.socket,
      data_dir: flags.dataDir,
      join_token: flags.joinToken,
      x509pop,
      trust_bundle_file: flags.trustBundle,
      trust_bundle_url: flags.trustBundleUrl,
      insecure_bootstrap: flags.insecureBootstrap,
      log_format: flags.logFormat,
    },
    {
      dataDir: defaultAgentDataDir(env, homedir()),
      socketPath: DEFAULT_AGENT_SOCKET,
    },
  );
}
