// The server's configuration as the composition root reads it: the config file, the environment
// and `tessera server run`'s flags compiled into one ServerConfig, and what follows from it
// directly (default data dir, log destination, bundle refresh hint).
import { homedir } from 'node:os';
import pino from 'pino';
import { defaultServerDataDir as defaultDataDir } from '../../../core/defaults.ts';
import { resolveLogFormat, textLogStream, type LogFormatSetting } from '../../../core/log-text.ts';
import { parseConfigYaml, readConfigFile } from '../../../plugins/config-file.ts';
import { compileServerConfig, type ServerConfig } from './compile.ts';

export interface ServerRunFlags {
  config?: string;
  trustDomain?: string;
  dataDir?: string;
  listen?: string;
  adminSocket?: string;
  datastoreUrl?: string;
  healthListen?: string;
  publicListen?: string;
  publicCert?: string;
  publicKey?: string;
  issuer?: string;
  logFormat?: string;
}

/** Reads the config file and environment, applies flags. Used by `tessera server run`. */
export function loadServerConfig(flags: ServerRunFlags, env = process.env): ServerConfig {
  const file = flags.config ? parseConfigYaml(readConfigFile(flags.config), flags.config) : {};
  return compileServerConfig(
    file,
    env,
    {
      trust_domain: flags.trustDomain,
      data_dir: flags.dataDir,
      listen: flags.listen,
      admin_socket: flags.adminSocket,
      datastore_url: flags.datastoreUrl,
      health_listen: flags.healthListen,
      public_listen: flags.publicListen,
      public_cert_file: flags.publicCert,
      public_key_file: flags.publicKey,
      'jwt.issuer': flags.issuer,
      log_format: flags.logFormat,
    },
    { dataDir: defaultServerDataDir(env) },
  );
}

export function defaultServerDataDir(env = process.env): string {
  return env.TESSERA_DATA_DIR || defaultDataDir(env, homedir());
}

/** The log goes to stderr as JSON lines, or as text lines for a person (core/log-text.ts). */
export function logDestination(setting: LogFormatSetting): pino.DestinationStream {
  const stderr = pino.destination(2);
  return resolveLogFormat(setting, process.stderr.isTTY === true) === 'text'
    ? textLogStream(stderr)
    : stderr;
}

/** The configured hint, or SPIRE's rule: the CA lifetime / 10, at least a minute. */
export function refreshHintSeconds(config: ServerConfig): number {
  const ms =
    config.bundle_refresh_hint ?? Math.max(60_000, Math.min(config.ca.ttl, config.jwt.ttl) / 10);
  return Math.max(1, Math.floor(ms / 1000));
}
