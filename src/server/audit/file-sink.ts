// Export sink: JSON lines to a local file, rotated by size (file → file.1 → … → file.<keep>,
// the oldest removed), with an fsync policy: `always` (before the cursor moves: a crash loses
// nothing), `interval` (at most that long of records can be lost by a crash of the machine and
// are not re-sent), `never` (the OS decides).
import { constants } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import type { ExportSink } from './export-record.ts';

export interface FileSinkOptions {
  path: string;
  maxBytes: number;
  keep: number;
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
}

export async function openFileSink(o: FileSinkOptions): Promise<ExportSink> {
  let fh: FileHandle = await openAppend(o.path);
  let size = (await stat(o.path)).size;
  let dirty = false;
  const timer =
    o.fsync === 'interval'
      ? setInterval(() => {
          if (!dirty) return;
          dirty = false;
          fh.sync().catch(() => (dirty = true));
        }, o.fsyncIntervalMs)
      : null;
  timer?.unref();

  async function rotate(): Promise<void> {
    await fh.sync();
    await fh.close();
    await rm(`${o.path}.${o.keep}`, { force: true });
    for (let i = o.keep - 1; i >= 1; i--) {
      await rename(`${o.path}.${i}`, `${o.path}.${i + 1}`).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
    await rename(o.path, `${o.path}.1`);
    fh = await openAppend(o.path);
    size = 0;
  }

  return {
    async deliver(records) {
      let chunk = '';
      const flush = async () => {
        if (chunk === '') return;
        await fh.write(chunk);
        size += Buffer.byteLength(chunk);
        chunk = '';
      };
      for (const r of records) {
        const line = JSON.stringify(r) + '\n';
        const n = Buffer.byteLength(line);
        if (size + Buffer.byteLength(chunk) + n > o.maxBytes && size + chunk.length > 0) {
          await flush();
          await rotate();
        }
        chunk += line;
      }
      await flush();
      if (o.fsync === 'always') await fh.sync();
      else dirty = true;
    },
    async close() {
      if (timer) clearInterval(timer);
      if (o.fsync !== 'never') await fh.sync().catch(() => {});
      await fh.close();
    },
  };
}

function openAppend(file: string): Promise<FileHandle> {
  return open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
}
