// The exclusive lock a server or agent holds on its data directory for its whole life.
//
// Why: two processes on one data directory destroy each other's state (a second server took
// over the admin socket and deleted the first one's authority keys). The lock is a kernel
// flock(2) on `<data-dir>/lock`, taken with LOCK_EX|LOCK_NB through koffi (Node has no flock):
// the kernel drops it when the process dies, even on kill -9, so a crash never leaves a stale
// lock to clean by hand. The file also holds the holder's pid, so the refusal names it.
//
// Where: src/plugins is the lowest layer both composition roots (server and agent) may import
// that may do I/O (src/core may not), as config-file.ts beside it; it is not a key (crypto/keys).
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
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

export interface DataDirLock {
  readonly dir: string;
  /** Idempotent. The kernel would release it at exit anyway; this clears the pid too. */
  release(): void;
}

/**
 * Creates the directory (0700) if needed and locks it, or throws DataDirLockedError. Call it
 * before anything else reads or writes the directory.
 */
export function lockDataDir(dir: string, pid = process.pid): DataDirLock {
  const abs = path.resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  const file = path.join(abs, LOCK_FILE);
  const c = loadLibc();
  // O_NOFOLLOW: a symlink planted as the lock file must not make us truncate its target.
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  if (c.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = c.errno();
    closeSync(fd);
    if (errno === EWOULDBLOCK) throw new DataDirLockedError(abs, readHolder(file));
    throw new Error(`flock(${file}) failed: errno ${errno}`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${pid}\n`, 0);
  let open = true;
  return {
    dir: abs,
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

/** The pid written by the holder; null while it is still writing it or when unreadable. */
function readHolder(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
