// `npm test`: every check CI relies on, in order, stopping at the first failure.
// Runs on the repository's pinned Node (npm puts node_modules/.bin first on PATH).
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const bin = (name: string) => `node_modules/.bin/${name}`;
const only = process.argv.slice(2);

const steps: Array<[string, string, string[]]> = [
  ['typecheck', bin('tsc'), ['--noEmit', '-p', '.']],
  ['lint', bin('eslint'), ['.', '--max-warnings=0']],
  ['format', bin('prettier'), ['--check', '--log-level=warn', '.']],
  ['boundaries', process.execPath, ['scripts/check-boundaries.ts']],
  [
    'tests',
    process.execPath,
    [
      '--test',
      '--test-concurrency=2',
      '--test-timeout=120000',
      ...(only.length > 0
        ? only
        : [...globSync('src/**/*.test.ts'), ...globSync('test/**/*.test.ts')].sort()),
    ],
  ],
];

for (const [name, cmd, args] of steps) {
  if (only.length > 0 && name !== 'tests') continue;
  console.log(`\n== ${name}`);
  const result = spawnSync(cmd, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`\n${name} failed (exit ${result.status ?? result.signal})`);
    process.exit(1);
  }
}
