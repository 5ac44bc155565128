// Layer boundary check (ARCHITECTURE.md "Layers and folders"): imports point inward only.
// Fails with one line per violation. Run by `npm test`.
import { globSync, readFileSync } from 'node:fs';
import path from 'node:path';

type Layer =
  'core' | 'crypto' | 'store' | 'server' | 'agent' | 'plugins' | 'client' | 'cli' | 'proto';

const allowed: Record<Layer, Layer[]> = {
  core: [],
  crypto: ['core'],
  store: ['core'],
  plugins: ['core', 'crypto'],
  proto: [],
  client: ['core', 'proto', 'crypto'],
  server: ['core', 'crypto', 'store', 'plugins', 'proto'],
  agent: ['core', 'crypto', 'plugins', 'proto', 'client'],
  cli: ['client', 'core', 'proto', 'crypto'],
};

// Composition roots: the only files allowed to reach across for `run` commands.
const compositionRoots = ['src/server/compose.ts', 'src/agent/compose.ts'];

// The pure core may compute with node:crypto but does no I/O and reads no ambient state.
const coreForbiddenText: Array<[RegExp, string]> = [
  [/\bprocess\./, 'process (ambient state)'],
  [/\bDate\.now\(/, 'Date.now() (inject a Clock)'],
  [/new Date\(\)/, 'new Date() (inject a Clock)'],
  [/\bMath\.random\(/, 'Math.random() (inject randomness)'],
];
const coreAllowedModules = new Set(['node:crypto', 'node:buffer', 'node:util']);

export function layerOf(file: string): Layer | undefined {
  const rel = path.relative('.', file).split(path.sep).join('/');
  if (rel.startsWith('proto/')) return 'proto';
  const m = /^src\/([a-z]+)\//.exec(rel);
  return m && m[1] && m[1] in allowed ? (m[1] as Layer) : undefined;
}

const importRe =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

export function checkFile(file: string, text: string): string[] {
  const problems: string[] = [];
  const layer = layerOf(file);
  if (!layer || layer === 'proto') return problems;
  const isTest = file.endsWith('.test.ts');
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec) continue;
    if (spec.startsWith('.')) {
      const target = path.join(path.dirname(file), spec);
      const targetLayer = layerOf(target);
      if (!targetLayer || targetLayer === layer) continue;
      const rel = path.relative('.', target).split(path.sep).join('/');
      if (layer === 'cli' && compositionRoots.includes(rel)) continue;
      // Tests beside the code may use any lower layer's real implementations (no mocks).
      if (isTest && targetLayer !== 'cli') continue;
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
  const files = globSync('src/**/*.ts').sort();
  const problems = files.flatMap((f) => checkFile(f, readFileSync(f, 'utf8')));
  for (const p of problems) console.error(p);
  if (problems.length > 0) process.exit(1);
  console.log(`boundaries ok (${files.length} files)`);
}
