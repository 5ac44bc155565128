// `npm run bench`: every benchmark, each printing rates and ratios to baselines measured in the
// same run. Pass milliseconds per measurement as the first argument (default 2000).
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ms = process.argv[2] ?? '2000';
for (const file of [
  'crypto.bench.ts',
  'server.bench.ts',
  'agent.bench.ts',
  'push.bench.ts',
  'sts.bench.ts',
  'cel.bench.ts',
  'access.bench.ts',
  'cli.bench.ts',
  'credentials.bench.ts',
  'proxy-redis.bench.ts',
  'proxy-http.bench.ts',
  'proxy-postgres.bench.ts',
  'proxy-agent.bench.ts',
  'cloud-credentials.bench.ts',
]) {
  console.log(`\n== ${file}`);
  const r = spawnSync(process.execPath, [path.join(import.meta.dirname, file), ms], {
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
