// What a process does to its data directory right after locking it, before it reads or writes
// anything there: it says when the lock tightened the directory's mode, and it removes the temp
// files its own atomic writer left behind when an earlier run was killed mid-write (a private key,
// for a key being generated). Shared by both composition roots, as the lock is.
import { removeInterruptedWrites } from '../crypto/keys/atomic-temp.ts';
import { octal, type DataDirLock } from './data-dir-lock.ts';

/** A directory inside the locked data directory, and the names of the files written there. */
export interface AtomicWriteDir {
  readonly dir: string;
  /** Whether `name` is a file this process replaces atomically in `dir`. */
  readonly isOurs: (name: string) => boolean;
}

/** pino's shape, so that this layer needs no logger of its own. */
export interface WarnLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Call it with the lock held: the directories are then this process's alone, so a temp file of
 * its own naming pattern there is a leftover, never a write in progress.
 */
export async function tidyDataDir(
  lock: DataDirLock,
  dirs: readonly AtomicWriteDir[],
  log: WarnLog,
  uid = process.getuid?.() ?? 0,
): Promise<void> {
  if (lock.tightenedFrom !== null) {
    const mode = octal(lock.tightenedFrom);
    log.warn(
      { dir: lock.dir, mode },
      `data directory ${lock.dir} had mode ${mode}, open to other users: tightened to 0700`,
    );
  }
  for (const { dir, isOurs } of dirs) {
    const r = await removeInterruptedWrites(dir, isOurs, uid);
    for (const file of r.removed) {
      log.warn({ file }, `removed ${file}, left by a write that a crash or kill interrupted`);
    }
    for (const { file, reason } of r.kept) {
      log.warn(
        { file, reason },
        `kept ${file}: named like a temp file of this process, but ${reason}`,
      );
    }
  }
}
