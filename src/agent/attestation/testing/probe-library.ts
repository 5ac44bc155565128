// Test support (imported only by tests): a small shared library that no node process maps by
// itself, copied under a name of our own, for tests that map and unmap it (koffi's load and
// unload: dlopen and dlclose) to change a process's mapped libraries while it runs.
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where a libz may be, on the distributions these tests run on. */
const SOURCES = [
  '/lib/x86_64-linux-gnu/libz.so.1',
  '/usr/lib/x86_64-linux-gnu/libz.so.1',
  '/lib/aarch64-linux-gnu/libz.so.1',
  '/usr/lib/aarch64-linux-gnu/libz.so.1',
  '/usr/lib64/libz.so.1',
  '/lib64/libz.so.1',
];

export const PROBE = 'libtessera-probe.so';

export interface ProbeLibrary {
  /** Absolute path of the copy, readable by every uid. */
  readonly path: string;
  remove(): void;
}

/** A fresh copy of the probe in a temp directory; undefined when this machine has no libz. */
export function probeLibrary(): ProbeLibrary | undefined {
  const source = SOURCES.find((p) => existsSync(p));
  if (source === undefined) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-probe-'));
  chmodSync(dir, 0o755); // a child of another uid maps it too
  const file = path.join(dir, PROBE);
  copyFileSync(source, file);
  chmodSync(file, 0o755);
  return { path: file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
