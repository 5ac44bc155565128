// Node's compile cache for the tessera CLI, per user (~/.cache/tessera), never a shared
// directory such as /tmp: its entries become code that runs, so only the user running it may
// write them. Used by bin/tessera.mjs, and by the CLI snapshot when it runs from the sources.
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

/** Turns the cache on for the modules loaded after this call (when a cache directory exists). */
export function enableUserCompileCache() {
  const cacheDir = compileCacheDir();
  if (cacheDir) enableCompileCache(cacheDir);
}
