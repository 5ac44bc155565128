// The socket file's life: a parent directory, no stale file from a previous run, and permissions
// that let every local user connect.
//
// Why 0777: the Workload API must not require client authentication (spec §1); any process of
// any user may ask, and *what* it gets is decided per caller from SO_PEERCRED + workload
// attestation. Filesystem permissions would only lock out workloads running as other users. The
// directory is 0755 and the agent's: nobody else can replace the socket with their own.
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.ts';

/** sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

export interface BoundSocket {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

export async function bindSocket(server: net.Server, socketPath: string): Promise<BoundSocket> {
  if (!path.isAbsolute(socketPath)) {
    throw new InvalidArgumentError(`socket path "${socketPath}" must be absolute`);
  }
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidArgumentError(`socket path is longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
  }
  ensureDirectory(path.dirname(socketPath));
  await removeStale(socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o777);
  const st = statSync(socketPath);
  return { path: socketPath, dev: st.dev, ino: st.ino };
}

/** Removes the socket file if it is still the one we bound (another agent may have taken over). */
export function removeSocket(b: BoundSocket): void {
  try {
    const st = lstatSync(b.path);
    if (st.dev === b.dev && st.ino === b.ino) unlinkSync(b.path);
  } catch {
    // Already gone: nothing to clean up.
  }
}

function ensureDirectory(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) {
      throw new FailedPreconditionError(`socket directory "${dir}" is not a directory`);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755); // mkdir's mode is filtered by the umask
  }
}

/**
 * A socket file left by a previous run is removed; a live one (someone accepts connections) or
 * a file that is not a socket is an error, never silently deleted.
 */
async function removeStale(socketPath: string): Promise<void> {
  let st;
  try {
    st = lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) {
    throw new FailedPreconditionError(`"${socketPath}" exists and is not a socket`);
  }
  if (await isServed(socketPath)) {
    throw new FailedPreconditionError(
      `another process (another agent?) accepts connections on "${socketPath}": stop it, or use another socket path`,
    );
  }
  try {
    unlinkSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // gone meanwhile: fine
  }
}

/**
 * Whether someone may be serving on the socket. Only a refused connection proves the file is
 * stale; a listener that is slow to answer or whose backlog is full (EAGAIN) is still alive, so
 * every other outcome counts as served: a live agent's socket is never deleted.
 */
function isServed(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    const done = (served: boolean) => {
      c.destroy();
      resolve(served);
    };
    c.once('connect', () => done(true));
    c.once('error', (e: NodeJS.ErrnoException) =>
      done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'),
    );
    c.setTimeout(1000, () => done(true));
  });
}
