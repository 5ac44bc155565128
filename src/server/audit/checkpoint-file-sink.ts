// Checkpoints appended to a local file: opened O_APPEND (never rewritten; `chattr +a` on it is
// compatible), each line fsynced before it counts as written.
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { CheckpointSink } from './checkpoint-writer.ts';

export async function openCheckpointFile(file: string): Promise<CheckpointSink> {
  const fh: FileHandle = await open(
    file,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
    0o600,
  );
  return {
    async write(line) {
      await fh.write(line);
      await fh.sync();
    },
    close: () => fh.close(),
  };
}
