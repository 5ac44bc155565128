// A sink's cursor: the seq and hash of the last record it delivered, in a small file replaced
// atomically after each delivered batch. The audit table is the spool; the cursor is how far
// this sink has read it.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';

export interface Cursor {
  readonly seq: number;
  readonly hash: string;
}

export interface CursorStore {
  read(): Promise<Cursor | null>;
  write(c: Cursor): Promise<void>;
}

export function cursorFile(file: string): CursorStore {
  return {
    async read() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
      const c = JSON.parse(text) as Cursor;
      if (!Number.isSafeInteger(c.seq) || c.seq < 0 || typeof c.hash !== 'string')
        throw new Error(`audit sink cursor ${file}: not a cursor; delete it to re-export`);
      return { seq: c.seq, hash: c.hash };
    },
    write: (c) => writeFileAtomic(file, JSON.stringify(c) + '\n', 0o600),
  };
}
