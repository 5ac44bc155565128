// What bin/tessera runs: turns on Node's compile cache, then starts the CLI. Plain JavaScript on
// purpose: the first TypeScript module costs loading the type stripper (~40 ms here), and with
// the cache on, later runs take stripped and compiled modules from the cache instead.
// The cache is per user (~/.cache/tessera), never a shared directory such as /tmp: its entries
// become code that runs, so only the user running it may write them.
import { enableCompileCache } from 'node:module';
import path from 'node:path';

const cacheHome =
  process.env.XDG_CACHE_HOME || (process.env.HOME && path.join(process.env.HOME, '.cache'));
if (cacheHome) enableCompileCache(path.join(cacheHome, 'tessera', 'compile-cache'));

await import('../src/cli/main.ts');
