// The admin socket's file: its 0700 directory, a stale socket left by a server that is gone, and
// its 0600 mode. File handling stays in the composition root; the API's listener
// (api/listeners.ts) only listens on the path.
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { FailedPreconditionError } from '../../core/errors.ts';
import { AdminSocketInUseError } from '../http/listen-error.ts';

/** Makes the socket's directory (0700) and removes a stale socket file; see removeStaleSocket. */
export async function prepareAdminSocket(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  await removeStaleSocket(socketPath);
}

/** Once listening: owner only (the listener binds under umask 0177 already; this makes sure). */
export function restrictAdminSocket(socketPath: string): void {
  chmodSync(socketPath, 0o600);
}

/**
 * A socket file left by a server that is gone is replaced; one a server still listens on is
 * never taken over (its admin commands would silently reach the wrong server), and a path that
 * is not a socket at all is not ours to delete.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let st;
  try {
    st = lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket())
    throw new FailedPreconditionError(`${socketPath} exists and is not a socket: not replacing it`);
  if (await someoneListens(socketPath)) throw new AdminSocketInUseError(socketPath);
  unlinkSync(socketPath);
}

function someoneListens(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (listening: boolean) => {
      s.destroy();
      resolve(listening);
    };
    s.once('connect', () => done(true));
    // ECONNREFUSED: a file without a listener. Any other error: we cannot tell, so we assume
    // nobody — the bind that follows reports a real problem by itself.
    s.once('error', () => done(false));
    s.setTimeout(5_000, () => done(true));
  });
}
