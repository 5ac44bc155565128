// The exclusive lock a server or agent holds on its data directory for its whole life.
//
// Why: two processes on one data directory destroy each other's state (a second server took
// over the admin socket and deleted the first one's authority keys). The lock is a kernel
// flock(2) on `<data-dir>/lock`, taken with LOCK_EX|LOCK_NB through koffi (Node has no flock):
// the kernel drops it when the process dies, even on kill -9, so a crash never leaves a stale
// lock to clean by hand. The file also holds the holder's pid, so the refusal names it.
//
// The directory must be this process's own: one owned by another uid could be read, or its files
// replaced, by that user, and one writable by every user (/tmp itself, 1777) may hold files anyone
// planted; both are refused. One of ours that is merely open to others (wider than 0700, such as
// 0755 from mkdir with the default umask) is tightened to 0700, and the caller logs it. Checked and
// changed on the opened directory (fstat/fchmod), not by path a second time.
//
// Where: src/plugins is the lowest layer both composition roots (server and agent) may import
// that may do I/O (src/core may not), as config-file.ts beside it; it is not a key (crypto/keys).
import {
  closeSync,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { constants } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Koffi from 'koffi';
import { FailedPreconditionError } from '../core/errors.ts';

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
export const LOCK_FILE = 'lock';

interface Libc {
  flock(fd: number, op: number): number;
  errno(): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') {
    throw new Error(
      `the data-directory lock is implemented for Linux only (not ${process.platform})`,
    );
  }
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  let lib: ReturnType<typeof koffi.load>;
  try {
    // dlopen(NULL): the libc node itself links against (glibc or musl).
    lib = koffi.load(null);
  } catch {
    lib = koffi.load('libc.so.6');
  }
  const flock = lib.func('int flock(int fd, int operation)');
  libc = { flock: (fd, op) => flock(fd, op) as number, errno: () => koffi.errno() };
  return libc;
}

/** Another live process holds the directory. */
export class DataDirLockedError extends FailedPreconditionError {
  readonly dir: string;
  readonly holderPid: number | null;
  constructor(dir: string, holderPid: number | null) {
    super(
      `data directory ${dir} is in use by another Tessera process` +
        (holderPid ? ` (pid ${holderPid})` : '') +
        ': stop it first, or give this process its own --data-dir',
    );
    this.name = 'DataDirLockedError';
    this.dir = dir;
    this.holderPid = holderPid;
  }
}

/**
 * The directory is not provably this process's own: owned by another uid, or writable by every
 * user (anyone could have planted files in it). Refused, never tightened or written to.
 */
export class DataDirPermissionError extends FailedPreconditionError {
  readonly dir: string;
  readonly owner: number;
  readonly mode: number;
  constructor(dir: string, owner: number, mode: number, uid: number) {
    super(
      owner !== uid
        ? `data directory ${dir} is owned by uid ${owner} (mode ${octal(mode)}), not by this ` +
            `process (uid ${uid}): another user could read or replace its files; chown it to ` +
            `uid ${uid}, or give this process its own --data-dir`
        : `data directory ${dir} is writable by every user (mode ${octal(mode)}): anyone could ` +
            'have planted files in it; give this process its own --data-dir',
    );
    this.name = 'DataDirPermissionError';
    this.dir = dir;
    this.owner = owner;
    this.mode = mode;
  }
}

/** A permission mode as operators write it: 0755. */
export function octal(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

export interface DataDirLock {
  readonly dir: string;
  /**
   * The directory's mode when it was wider than 0700 and has been tightened to 0700 by the lock,
   * for the caller to log; null when it was private already.
   */
  readonly tightenedFrom: number | null;
  /** Idempotent. The kernel would release it at exit anyway; this clears the pid too. */
  release(): void;
}

/**
 * Creates the directory (0700) if needed, refuses it when another uid owns it or every user may
 * write to it (DataDirPermissionError),
 * locks it (or throws DataDirLockedError), then tightens it to 0700 if it was wider. Call it
 * before anything else reads or writes the directory.
 */
export function lockDataDir(
  dir: string,
  pid = process.pid,
  uid = process.getuid?.() ?? 0,
): DataDirLock {
  const abs = path.resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  const dfd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY);
  let fd: number;
  let tightenedFrom: number | null = null;
  try {
    const st = fstatSync(dfd);
    // Before the lock file is created in it: nothing is written into another user's directory.
    if (st.uid !== uid || (st.mode & 0o002) !== 0) {
      throw new DataDirPermissionError(abs, st.uid, st.mode, uid);
    }
    fd = lockFile(path.join(abs, LOCK_FILE), abs);
    // Only once locked: a directory another live process holds is not changed under it.
    if ((st.mode & 0o077) !== 0) {
      try {
        fchmodSync(dfd, 0o700);
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      tightenedFrom = st.mode & 0o7777;
    }
  } finally {
    closeSync(dfd);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${pid}\n`, 0);
  let open = true;
  return {
    dir: abs,
    tightenedFrom,
    release() {
      if (!open) return;
      open = false;
      try {
        ftruncateSync(fd, 0);
      } finally {
        closeSync(fd); // closing the last descriptor releases the flock
      }
    },
  };
}

/** Opens and flocks the lock file; the descriptor holds the lock. */
function lockFile(file: string, dir: string): number {
  const c = loadLibc();
  // O_NOFOLLOW: a symlink planted as the lock file must not make us truncate its target.
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  if (c.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = c.errno();
    closeSync(fd);
    if (errno === EWOULDBLOCK) throw new DataDirLockedError(dir, readHolder(file));
    throw new Error(`flock(${file}) failed: errno ${errno}`);
  }
  return fd;
}

/** The pid written by the holder; null while it is still writing it or when unreadable. */
function readHolder(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
