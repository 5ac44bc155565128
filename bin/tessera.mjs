// What bin/tessera runs when the CLI snapshot does not apply (see scripts/build-cli.ts): turns on
// Node's compile cache, then starts the CLI. Plain JavaScript on purpose: the first TypeScript
// module costs loading the type stripper (~40 ms here), and with the cache on, later runs take
// stripped and compiled modules from the cache instead.
import { enableUserCompileCache } from './compile-cache.mjs';

enableUserCompileCache();

await import('../src/cli/main.ts');
