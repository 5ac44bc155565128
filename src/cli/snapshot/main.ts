// The CLI's V8 startup snapshot (`npm run build`, see scripts/build-cli.ts): bundled into one
// script, evaluated once while `node --build-snapshot` runs, so that a `tessera entry list`
// starts with Commander, Connect, protobuf-es, the generated protos and the command modules
// already in the heap instead of loading and evaluating ~150 modules.
//
// A stale snapshot never runs: the build records the size and mtime of every file it bundled,
// and each start compares them (a few hundred stat calls, ~1 ms). When any differs — a
// developer edited src/ — the command runs from the sources instead, as bin/tessera.mjs would.
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { startupSnapshot } from 'node:v8';
import { run, type CliIo } from '../program.ts';
import { fingerprint, type BuildInputs } from './fingerprint.ts';
// The groups bin/tessera sends here (SNAPSHOT_GROUPS in scripts/build-cli.ts): imported now so
// that they are evaluated into the snapshot; the others are left out of the bundle.
import '../commands/entry.ts';
import '../commands/token.ts';
import '../commands/bundle.ts';
import '../commands/authority.ts';
import '../commands/audit.ts';
import '../commands/federation.ts';
import '../commands/issuer.ts';
import '../commands/trust-policy.ts';
import '../commands/server-workload.ts';
import '../commands/credential-provider.ts';
import '../commands/access-policy.ts';
import '../commands/secret.ts';
import '../commands/posture.ts';

type Run = typeof run;

/** The CLI from the sources (with the compile cache on), for when the snapshot is stale. */
function runFromSources(root: string): Run {
  const require = createRequire(path.join(root, 'bin/tessera.mjs'));
  (require('./compile-cache.mjs') as { enableUserCompileCache(): void }).enableUserCompileCache();
  return (require('../src/cli/program.ts') as { run: Run }).run;
}

if (startupSnapshot.isBuildingSnapshot()) {
  // Read while building: the heap keeps it.
  const build = JSON.parse(process.env.TESSERA_CLI_BUILD_INPUTS ?? 'null') as BuildInputs | null;
  if (!build) throw new Error('TESSERA_CLI_BUILD_INPUTS is not set: build with npm run build');
  startupSnapshot.setDeserializeMainFunction(() => {
    // bin/tessera starts `node --snapshot-blob <blob> <repo>/bin/tessera.mjs args...`; the path
    // may pass through a symbolic link (`bin` linked into another directory): the repository is
    // where the real file is, as for Node's own main module.
    const root = path.dirname(path.dirname(realpathSync.native(process.argv[1] ?? '')));
    const io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };
    const start = fingerprint(root, build.files) === build.fingerprint ? run : runFromSources(root);
    void start(process.argv.slice(2), io).then((code) => {
      process.exitCode = code;
    });
  });
}
