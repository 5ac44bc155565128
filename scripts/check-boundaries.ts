// Layer boundary check (ARCHITECTURE.md "Layers and folders"): imports point inward only.
// `allowed` below is that table, row for row; deviations kept on purpose are listed in
// `deviations` with the reason the README gives. Fails with one line per violation. Run by
// `npm test`.
import { globSync, readFileSync } from 'node:fs';
import path from 'node:path';

const srcLayers = [
  'core',
  'conditions',
  'crypto',
  'wire',
  'store',
  'plugins',
  'server',
  'agent',
  'client',
  'cli',
] as const;
type SrcLayer = (typeof srcLayers)[number];
/** Outside src/: generated protobuf code, and the folders that drive the code from outside. */
type Layer = SrcLayer | 'proto' | 'test' | 'bench' | 'scripts';

const everySrcLayer: readonly Layer[] = [...srcLayers, 'proto'];

/** ARCHITECTURE.md's table: what each layer may import besides itself. */
export const table: Readonly<Record<Layer, readonly Layer[]>> = {
  core: [],
  conditions: ['core'],
  crypto: ['core'],
  wire: ['core', 'proto'],
  store: ['core'],
  plugins: ['core', 'crypto', 'conditions'],
  server: ['core', 'conditions', 'crypto', 'wire', 'store', 'plugins', 'proto'],
  agent: ['core', 'conditions', 'crypto', 'wire', 'plugins', 'proto', 'client'],
  client: ['core', 'wire', 'proto'],
  cli: ['client', 'core', 'wire', 'crypto'],
  proto: [],
  test: [...everySrcLayer, 'test', 'bench', 'scripts'],
  bench: [...everySrcLayer, 'test', 'bench'],
  scripts: [...everySrcLayer, 'scripts'],
};

/** Kept on purpose; each is recorded in the README's layout section with its reason. */
export const deviations: Readonly<Partial<Record<Layer, readonly Layer[]>>> = {
  // The workload SDK verifies X.509-SVIDs and JWT-SVIDs and parses bundles on the caller's side.
  client: ['crypto'],
};

export const allowed: Readonly<Record<Layer, readonly Layer[]>> = Object.fromEntries(
  Object.entries(table).map(([l, deps]) => [l, [...deps, ...(deviations[l as Layer] ?? [])]]),
) as unknown as Record<Layer, readonly Layer[]>;

// Composition roots: the only files of another layer the CLI may import (for `run` commands).
const compositionRoots = ['src/server/compose/server.ts', 'src/agent/compose.ts'];

// Inside the server only its composition root (server/compose/) opens a store; everything else —
// handlers above all — receives narrow ports and may import from src/store only the port types.
const serverCompositionRoot = 'src/server/compose/';
const storePortFiles = new Set(['src/store/types.ts']);

// The pure core may compute with node:crypto but does no I/O and reads no ambient state.
const coreForbiddenText: Array<[RegExp, string]> = [
  [/\bprocess\./, 'process (ambient state)'],
  [/\bDate\.now\(/, 'Date.now() (inject a Clock)'],
  [/new Date\(\)/, 'new Date() (inject a Clock)'],
  [/\bMath\.random\(/, 'Math.random() (inject randomness)'],
];
const coreAllowedModules = new Set(['node:crypto', 'node:buffer', 'node:util']);

const rel = (file: string) => path.relative('.', file).split(path.sep).join('/');

export function layerOf(file: string): Layer | undefined {
  const r = rel(file);
  if (r.startsWith('proto/')) return 'proto';
  const top = /^(test|bench|scripts)\//.exec(r);
  if (top?.[1]) return top[1] as Layer;
  const m = /^src\/([a-z]+)\//.exec(r);
  return m?.[1] && (srcLayers as readonly string[]).includes(m[1]) ? (m[1] as Layer) : undefined;
}

/** Test code inside src/: a unit test beside the code, or a file in a `testing/` folder. */
function isTestCode(file: string): boolean {
  return file.endsWith('.test.ts') || rel(file).split('/').slice(0, -1).includes('testing');
}

const importRe =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

export function checkFile(file: string, text: string): string[] {
  const problems: string[] = [];
  const layer = layerOf(file);
  if (!layer || layer === 'proto') return problems;
  const inSrc = (srcLayers as readonly string[]).includes(layer);
  const isTest = inSrc && isTestCode(file);
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec) continue;
    if (spec.startsWith('.')) {
      const target = path.join(path.dirname(file), spec);
      const targetLayer = layerOf(target);
      if (!targetLayer) continue;
      if (inSrc && !isTest) {
        // Production code never depends on test code, wherever it lives.
        if (targetLayer === 'test' || targetLayer === 'bench' || targetLayer === 'scripts') {
          problems.push(`${file}: production code may not import ${targetLayer}/ (${spec})`);
          continue;
        }
        if (isTestCode(target)) {
          problems.push(`${file}: production code may not import test code (${spec})`);
          continue;
        }
      }
      if (
        layer === 'server' &&
        !isTest &&
        targetLayer === 'store' &&
        !rel(file).startsWith(serverCompositionRoot) &&
        !storePortFiles.has(rel(target))
      ) {
        problems.push(
          `${file}: only the composition root may import a store implementation; use the port types of src/store/types.ts (${spec})`,
        );
        continue;
      }
      if (targetLayer === layer) continue;
      if (layer === 'cli' && compositionRoots.includes(rel(target))) continue;
      if (isTest) {
        // Tests beside the code may use any lower layer's real implementations (no mocks) and
        // the helpers under test/, but never the CLI, benches or scripts.
        if (targetLayer !== 'cli' && targetLayer !== 'bench' && targetLayer !== 'scripts') continue;
      }
      if (!allowed[layer].includes(targetLayer)) {
        problems.push(`${file}: layer '${layer}' may not import '${targetLayer}' (${spec})`);
      }
    } else if (layer === 'core' && !isTest) {
      // The pure core computes with node:crypto/buffer/util only: no I/O module, no package.
      if (!coreAllowedModules.has(spec)) {
        problems.push(
          `${file}: core may not import ${spec} (only ${[...coreAllowedModules].join(', ')})`,
        );
      }
    }
  }
  if (layer === 'core' && !isTest) {
    for (const [re, what] of coreForbiddenText) {
      if (re.test(text)) problems.push(`${file}: core may not use ${what}`);
    }
  }
  return problems;
}

if (import.meta.main) {
  const files = ['src', 'test', 'bench', 'scripts']
    .flatMap((dir) => globSync(`${dir}/**/*.ts`))
    .sort();
  const problems = files.flatMap((f) => checkFile(f, readFileSync(f, 'utf8')));
  for (const p of problems) console.error(p);
  if (problems.length > 0) process.exit(1);
  console.log(`boundaries ok (${files.length} files)`);
}
