// Process entry point (bin/tessera via bin/tessera.mjs, `npm run tessera`): hands the real
// streams, environment and argv to run(), then exits with its code. `tessera --version` alone is
// answered here, without loading the command parser: scripts call it to probe the install.
import { VERSION } from '../core/version.ts';

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(VERSION + '\n');
} else {
  const { run } = await import('./program.ts');
  process.exitCode = await run(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  });
}
