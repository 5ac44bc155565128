// What bin/tessera runs: turns on Node's compile cache, then starts the CLI. Plain JavaScript on
// purpose: the first TypeScript module costs loading the type stripper (~40 ms here), and with
// the cache on, later runs take stripped and compiled modules from the cache instead.
// The cache is per user (~/.cache/tessera), never a shared directory such as /tmp: its entries
// become code that runs, so only the user running it may write them.
import { mkdirSync, statSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import path from 'node:path';

/** ~/.cache/tessera/compile-cache, or nothing when that cannot be had. */
function compileCacheDir() {
  const { XDG_CACHE_HOME, HOME } = process.env;
  const base = XDG_CACHE_HOME || (HOME && path.join(HOME, '.cache'));
  if (!base || !path.isAbsolute(base)) return undefined;
  // One level at a time, not recursively: a recursive mkdir under an odd HOME (e.g. in /proc)
  // never returns on Node 24, and a CLI must not hang over its cache.
  const dir = path.join(base, 'tessera');
  for (const d of [base, dir]) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch {
      // Exists already, or cannot be made: the stat below decides.
    }
  }
  try {
    return statSync(dir).isDirectory() ? path.join(dir, 'compile-cache') : undefined;
  } catch {
    return undefined;
  }
}

const cacheDir = compileCacheDir();
if (cacheDir) enableCompileCache(cacheDir);

await import('../src/cli/main.ts');
