// What tells a fresh CLI snapshot from a stale one: the size and mtime of every file the build
// bundled, in order ("-" for a missing one). Computed by the build, and again at each start.
import { statSync } from 'node:fs';
import path from 'node:path';

/** What the build bundled: repository-relative paths and their fingerprint at build time. */
export interface BuildInputs {
  files: string[];
  fingerprint: string;
}

export function fingerprint(root: string, files: readonly string[]): string {
  return files
    .map((f) => {
      const s = statSync(path.join(root, f), { throwIfNoEntry: false });
      return s ? `${s.size}:${s.mtimeMs}` : '-';
    })
    .join(',');
}
