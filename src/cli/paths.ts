// The CLI's view of the default paths (src/core/defaults.ts): the same directories the server and
// the agent use when nothing says otherwise, for --help and for finding the admin socket.
// Light on purpose: `server run --help` loads this, not the Connect client.
import { homedir } from 'node:os';
import { defaultAgentDataDir, defaultServerDataDir } from '../core/defaults.ts';

export type Env = Record<string, string | undefined>;

/** The server's data directory when --data-dir and the config say nothing (as the server). */
export function serverDataDirDefault(env: Env): string {
  return env.TESSERA_DATA_DIR || defaultServerDataDir(env, homedir());
}

/** The agent's data directory when --data-dir and the config say nothing (as the agent). */
export function agentDataDirDefault(env: Env): string {
  return env.TESSERA_AGENT_DATA_DIR || defaultAgentDataDir(env, homedir());
}
