// The socket file's life: a parent directory, no stale file from a previous run, and permissions
// that let every local user connect.
//
// Why 0777: the Workload API must not require client authentication (spec §1); any process of
// any user may ask, and *what* it gets is decided per caller from SO_PEERCRED + workload
// attestation. Filesystem permissions would only lock out workloads running as other users.
//
// The directory is what keeps the socket ours: whoever can write to it, or to any directory above
// it, can replace the socket (or the directory) with their own and answer workloads with their
// SVIDs. So every component of its path must be owned by the agent's uid or root and writable by
// no one else (its own primary group aside), the one exception being a sticky directory such as /tmp itself (others may add
// entries there, but not rename or remove ours). The default socket is
// /tmp/tessera-agent/public/api.sock: a /tmp/tessera-agent pre-created by another local user is
// refused, never used. Components the agent creates are made 0755.
import { chmodSync, lstatSync, mkdirSync, realpathSync, statSync, unlinkSync } from 'node:fs';
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

export async function bindSocket(
  server: net.Server,
  socketPath: string,
  uid = process.getuid?.() ?? 0,
  gid = process.getgid?.() ?? 0,
): Promise<BoundSocket> {
  if (!path.isAbsolute(socketPath)) {
    throw new InvalidArgumentError(`socket path "${socketPath}" must be absolute`);
  }
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidArgumentError(`socket path is longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
  }
  ensureDirectory(path.dirname(socketPath), uid, gid);
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

/**
 * Checks every existing component of `dir` (after resolving symlinks), then creates the missing
 * ones one by one (0755), checking each as it comes. Throws FailedPreconditionError naming the
 * first component that someone else could change.
 */
export function ensureDirectory(dir: string, uid: number, gid = -1): void {
  let existing = dir;
  const missing: string[] = [];
  for (;;) {
    try {
      statSync(existing);
      break;
    } catch (e) {
      // ENOTDIR: a file on the way, refused below as "not a directory".
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      missing.unshift(path.basename(existing));
      existing = path.dirname(existing);
    }
  }
  let current = realpathSync(existing);
  const target = path.join(current, ...missing);
  const name = (c: string) => (c === target ? dir : c);
  for (const component of ancestry(current))
    checkComponent(component, { uid, gid }, name(component), dir);
  for (const part of missing) {
    current = path.join(current, part);
    try {
      mkdirSync(current, { mode: 0o755 });
      chmodSync(current, 0o755); // mkdir's mode is filtered by the umask
    } catch (e) {
      // Made meanwhile by someone else: checked like any other component below.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    checkComponent(current, { uid, gid }, name(current), dir);
  }
}

/** `/a/b/c` → `/`, `/a`, `/a/b`, `/a/b/c`. */
function ancestry(dir: string): string[] {
  const out = [dir];
  while (path.dirname(out[0] ?? '/') !== out[0]) out.unshift(path.dirname(out[0] ?? '/'));
  return out;
}

/**
 * One directory on the socket's path (`shown` as the operator named it when it is the socket's
 * own directory): ours or root's, and writable by no one else unless sticky. Group-writable is
 * accepted only for the agent's own primary group (a user-private group, as umask 002 makes).
 */
function checkComponent(
  component: string,
  { uid, gid }: { uid: number; gid: number },
  shown: string,
  dir: string,
): void {
  // lstat: the path was resolved, so a symlink here was put in place since — by whom, unknown.
  const st = lstatSync(component);
  if (!st.isDirectory()) throw notADirectory(shown);
  const mode = st.mode & 0o7777;
  const octal = '0' + mode.toString(8).padStart(3, '0');
  const named = shown === dir ? `socket directory "${dir}"` : `"${shown}" (above ${dir})`;
  if (st.uid !== uid && st.uid !== 0) {
    throw new FailedPreconditionError(
      `${named} is owned by uid ${st.uid} (mode ${octal}), not by this agent (uid ${uid}) or ` +
        'root: its owner could replace the socket; remove it, or choose another socket path',
    );
  }
  const writable = (mode & 0o002) !== 0 || ((mode & 0o020) !== 0 && st.gid !== gid);
  if (writable && (mode & 0o1000) === 0) {
    throw new FailedPreconditionError(
      `${named} is writable by other users (mode ${octal}, uid ${st.uid}, gid ${st.gid}): they could replace ` +
        'the socket; remove their write permission, or choose another socket path',
    );
  }
}

function notADirectory(shown: string): FailedPreconditionError {
  return new FailedPreconditionError(`socket directory "${shown}" is not a directory`);
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
