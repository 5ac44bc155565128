// Constants both the processes and the CLI need, kept apart from the composition roots so that
// a command does not load a whole server or agent just to know them.
import { InvalidArgumentError } from './errors.ts';

export { VERSION } from './version.ts';

/**
 * The agent's Workload API socket when neither flag, environment nor config names one. A fixed
 * path (SPIRE's is /tmp/spire-agent/public/api.sock) so that workloads of every user find it.
 */
export const DEFAULT_AGENT_SOCKET = '/tmp/tessera-agent/public/api.sock';

export type PathEnv = Readonly<Record<string, string | undefined>>;

/**
 * Where state lives when nothing says otherwise: $TESSERA_HOME, else $XDG_DATA_HOME/tessera,
 * else $HOME/.local/share/tessera (`home` when HOME is unset). Never relative to the working
 * directory, so every command finds the same server wherever it runs.
 */
export function defaultDataRoot(env: PathEnv, home: string): string {
  if (env.TESSERA_HOME) return absolute(env.TESSERA_HOME, 'TESSERA_HOME');
  // The XDG base directory spec: a relative value is invalid and is ignored.
  const xdg = env.XDG_DATA_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'tessera');
  return join(absolute(env.HOME || home, 'HOME'), '.local/share/tessera');
}

/** The server's data directory (and with it `<dir>/admin.sock`) by default. */
export function defaultServerDataDir(env: PathEnv, home: string): string {
  return join(defaultDataRoot(env, home), 'server');
}

/** The agent's data directory by default. */
export function defaultAgentDataDir(env: PathEnv, home: string): string {
  return join(defaultDataRoot(env, home), 'agent');
}

function absolute(dir: string, name: string): string {
  if (!dir.startsWith('/')) {
    throw new InvalidArgumentError(`${name} must be an absolute path, got "${dir}"`);
  }
  return dir;
}

/** POSIX join of an absolute directory and a relative path (no node:path in the core). */
function join(dir: string, rest: string): string {
  return `${dir.replace(/\/+$/, '')}/${rest}`;
}
