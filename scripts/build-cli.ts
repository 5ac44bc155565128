// `npm run build` (and `prepare`, so `npm ci` runs it): the CLI's V8 startup snapshot.
//   build/cli/cli.cjs   src/cli/snapshot/main.ts and everything it imports, bundled by esbuild
//   build/cli/cli.blob  `node --build-snapshot` of that bundle: the heap with every module loaded
// bin/tessera starts the admin command groups below from the blob; a blob whose recorded inputs
// changed since (see src/cli/snapshot/main.ts) runs the sources instead. Both files are
// gitignored build output.
//
// Not in the bundle, because their modules cannot be kept in a snapshot: node:http, node:https,
// node:http2 and node:child_process hold native handles once loaded, so they are replaced by
// stand-ins that load the real module on first use (after start-up); undici (Node's `Headers`)
// likewise, replaced by src/cli/snapshot/headers.ts.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { fingerprint } from '../src/cli/snapshot/fingerprint.ts';

/** The command groups bin/tessera runs from the snapshot (its `case` must list the same). */
export const SNAPSHOT_GROUPS = [
  'entry',
  'token',
  'bundle',
  'authority',
  'audit',
  'federation',
  'issuer',
  'trust-policy',
  'server-workload',
  'credential-provider',
  'access-policy',
  'secret',
  'posture',
];

export const REPO = path.resolve(import.meta.dirname, '..');
export const OUT_DIR = path.join(REPO, 'build/cli');
const LAZY_BUILTINS = ['http', 'https', 'http2', 'child_process'];

/** Built-in modules loaded on first use: the stand-in knows the names, not the values. */
const lazyBuiltins: esbuild.Plugin = {
  name: 'lazy-builtins',
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    build.onResolve({ filter }, (a) => ({ path: a.path.replace(/^node:/, ''), namespace: 'lazy' }));
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, (a) => {
      const names = Object.keys(process.getBuiltinModule(a.path) as object);
      return {
        loader: 'js',
        contents: `let real;
const load = () => (real ??= process.getBuiltinModule(${JSON.stringify(`node:${a.path}`)}));
const names = ${JSON.stringify(names)};
module.exports = new Proxy({}, {
  get: (_, k) => load()[k],
  has: (_, k) => names.includes(k),
  ownKeys: () => names,
  getOwnPropertyDescriptor: (_, k) =>
    names.includes(k) ? { configurable: true, enumerable: true, get: () => load()[k] } : undefined,
});`,
      };
    });
  },
};

/** program.ts imports every group lazily: the ones not in the snapshot are left out. */
const onlySnapshotGroups: esbuild.Plugin = {
  name: 'only-snapshot-groups',
  setup(build) {
    build.onResolve({ filter: /^\.\/commands\/[a-z-]+\.ts$/ }, (a) => {
      const group = path.basename(a.path, '.ts');
      if (!a.importer.endsWith(path.join('src/cli/program.ts'))) return undefined;
      if (SNAPSHOT_GROUPS.includes(group)) return undefined;
      return { path: group, namespace: 'not-in-snapshot' };
    });
    build.onLoad({ filter: /.*/, namespace: 'not-in-snapshot' }, (a) => ({
      loader: 'js',
      contents: `throw new Error(${JSON.stringify(`the ${a.path} command group is not in the CLI snapshot`)});`,
    }));
  },
};

function bundle(write: boolean): Promise<esbuild.BuildResult<{ metafile: true }>> {
  return esbuild.build({
    absWorkingDir: REPO,
    entryPoints: ['src/cli/snapshot/main.ts'],
    outfile: path.join(OUT_DIR, 'cli.cjs'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    metafile: true,
    write,
    logLevel: 'warning',
    inject: ['src/cli/snapshot/headers.ts'],
    plugins: [lazyBuiltins, onlySnapshotGroups],
  });
}

/**
 * What the snapshot's freshness is checked against: the repository's own files in the bundle,
 * one by one, and for the packages only npm's record of node_modules, which every npm install
 * and npm ci rewrites (and both run `prepare`, hence this build, after it). ~60 stat calls.
 */
function inputsOf(result: esbuild.BuildResult<{ metafile: true }>): string[] {
  const own = Object.keys(result.metafile.inputs).filter(
    // (node_modules may be a symbolic link, whose files esbuild names by their real path)
    (f) => !f.includes(':') && !f.split('/').includes('node_modules'),
  );
  return [...own.sort(), 'node_modules/.package-lock.json'];
}

/** Builds build/cli; resolves to the number of files its freshness check stats. */
export async function buildCli(): Promise<number> {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  // The fingerprint is taken before the bundle that is written and checked after it, so a file
  // edited during the build cannot end up in a snapshot that looks fresh.
  const files = inputsOf(await bundle(false));
  const before = fingerprint(REPO, files);
  const result = await bundle(true);
  if (inputsOf(result).join() !== files.join() || fingerprint(REPO, files) !== before) {
    throw new Error('the sources changed during the build: run it again');
  }
  const blob = path.join(OUT_DIR, 'cli.blob');
  const r = spawnSync(
    process.execPath,
    ['--snapshot-blob', blob, '--build-snapshot', path.join(OUT_DIR, 'cli.cjs')],
    {
      cwd: REPO,
      encoding: 'utf8',
      env: {
        ...process.env,
        TESSERA_CLI_BUILD_INPUTS: JSON.stringify({ files, fingerprint: before }),
      },
    },
  );
  if (r.status !== 0) {
    rmSync(OUT_DIR, { recursive: true, force: true });
    throw new Error(`node --build-snapshot failed (${r.status ?? r.signal}):\n${r.stderr}`);
  }
  return files.length;
}

if (import.meta.main) {
  const t0 = performance.now();
  const checked = await buildCli();
  const ms = Math.round(performance.now() - t0);
  console.log(`build/cli: CLI snapshot built in ${ms} ms (its freshness check: ${checked} files)`);
}
