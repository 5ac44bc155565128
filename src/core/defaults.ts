// Constants both the processes and the CLI need, kept apart from the composition roots so that
// a command does not load a whole server or agent just to know them.
export const VERSION = '0.1.0';

/** Default data directories and sockets, relative to the working directory. */
export const DEFAULT_SERVER_DATA_DIR = '.tessera/server';
export const DEFAULT_AGENT_DATA_DIR = '.tessera/agent';
export const DEFAULT_AGENT_SOCKET = '.tessera/public/api.sock';
