// Crash-safe file replacement: a reader sees either the old file or the complete new one, never a
// torn write, and the rename survives power loss (the directory entry is fsynced too).
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { atomicTempName, TEMP_RANDOM_BYTES } from './atomic-temp.ts';

export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  mode: number,
): Promise<void> {
  const dir = path.dirname(file);
  // Same directory so rename(2) is atomic; leading dot so listings skip it. A crash before the
  // rename leaves it behind: removed at the next start (atomic-temp.ts).
  const tmp = path.join(
    dir,
    atomicTempName(path.basename(file), randomBytes(TEMP_RANDOM_BYTES).toString('hex')),
  );
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
