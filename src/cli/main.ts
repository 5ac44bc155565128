// Process entry point (bin/tessera, `npm run tessera`): hands the real streams, environment
// and argv to run(), then exits with its code.
import { run } from './program.ts';

process.exitCode = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
