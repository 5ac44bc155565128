// What tells a fresh CLI snapshot from a stale one: the size and mtime of every file the build
// bundled, in order ("-" for a missing one). Computed by the build, and again at each start.
import { statSync } from 'node:fs';

/** What the build bundled: repository-relative paths and their fingerprint at build time. */
export interface BuildInputs {
  files: string[];
  fingerprint: string;
}

/** `files` are relative to `root` and normalised (the build lists them), so a plain join will do. */
export function fingerprint(root: string, files: readonly string[]): string {
  return files
    .map((f) => {
      const s = statSync(`${root}/${f}`, { throwIfNoEntry: false });
      return s ? `${s.size}:${s.mtimeMs}` : '-';
    })
    .join(',');
}
