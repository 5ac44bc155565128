// The temp files of writeFileAtomic (atomic-write.ts): their name, and their removal at start.
//
// Why: a process killed between creating the temp file and renaming it (kill -9, power loss)
// leaves `.<name>.tmp-<12 hex>` behind; for a key that is a private key nobody will ever read
// or delete. Only the process that owns the directory may remove them, and only those it can
// prove are its own: the exact name pattern of its own writer, the target name one of its own
// files, a regular file (never a symlink) owned by its uid, in a directory that is itself a real
// directory owned by its uid. Everything else is left alone, look-alikes included.
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Random bytes in a temp name (hex-encoded: twice as many characters). */
export const TEMP_RANDOM_BYTES = 6;
const TEMP_RE = new RegExp(`^\\.(.+)\\.tmp-[0-9a-f]{${TEMP_RANDOM_BYTES * 2}}$`);

/** `.<base>.tmp-<hex>`: beside the target (rename(2) is atomic within a directory), hidden. */
export function atomicTempName(target: string, randomHex: string): string {
  return `.${target}.tmp-${randomHex}`;
}

/** The target file name a temp name belongs to, or null when it is not exactly such a name. */
export function atomicTempTarget(name: string): string | null {
  const m = TEMP_RE.exec(name);
  const target = m?.[1];
  if (!target || target.includes('/')) return null;
  return target;
}

export interface InterruptedWrites {
  /** Removed temp files (absolute paths). */
  readonly removed: string[];
  /** Temp-named entries left in place because they cannot be proven ours, with the reason. */
  readonly kept: { file: string; reason: string }[];
}

/**
 * Removes the temp files of interrupted atomic writes in `dir` (not below it) whose target name
 * `isOurs` accepts. Call it only on a directory this process holds locked, before it writes there.
 * A missing directory has nothing to remove.
 */
export async function removeInterruptedWrites(
  dir: string,
  isOurs: (target: string) => boolean,
  uid: number,
): Promise<InterruptedWrites> {
  const result: InterruptedWrites = { removed: [], kept: [] };
  let st;
  try {
    st = await lstat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return result;
    throw e;
  }
  // A symlink could point anywhere: the files there are not ours to judge.
  if (!st.isDirectory() || st.uid !== uid) {
    return result;
  }
  for (const name of await readdir(dir)) {
    const target = atomicTempTarget(name);
    if (target === null || !isOurs(target)) continue;
    const file = path.join(dir, name);
    const f = await lstat(file);
    if (!f.isFile()) {
      result.kept.push({ file, reason: 'not a regular file' });
    } else if (f.uid !== uid) {
      result.kept.push({ file, reason: `owned by uid ${f.uid}, not ${uid}` });
    } else {
      await unlink(file);
      result.removed.push(file);
    }
  }
  // The removal survives a crash right after it, as the writes do.
  if (result.removed.length > 0) {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
  return result;
}
