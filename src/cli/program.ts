// Builds the `tessera` command tree and runs it with injected streams, so tests drive every
// command in-process. Errors become `error: <message>` on stderr and an exit code from the one
// table in exit-codes.ts; stack traces only with TESSERA_DEBUG=1, since expected failures
// (bad input, server refusals) are not bugs.
import { ConnectError } from '@connectrpc/connect';
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/defaults.ts';
import { registerAgent } from './commands/agent.ts';
import { registerAudit } from './commands/audit.ts';
import { registerAuthority } from './commands/authority.ts';
import { registerBundle } from './commands/bundle.ts';
import { registerEntry } from './commands/entry.ts';
import { registerHealthcheck } from './commands/healthcheck.ts';
import { registerJwt } from './commands/jwt.ts';
import { registerServer } from './commands/server.ts';
import { registerSts } from './commands/sts.ts';
import { registerSvid } from './commands/svid.ts';
import { registerToken } from './commands/token.ts';
import { registerX509 } from './commands/x509.ts';
import { registerIssuer } from './commands/issuer.ts';
import { registerTrustPolicy } from './commands/trust-policy.ts';
import { registerFederation } from './commands/federation.ts';
import type { CliIo } from './context.ts';
import { exitCodeOf, exitCodes } from './exit-codes.ts';

export type { CliIo } from './context.ts';

export function buildProgram(io: CliIo): Command {
  const program = new Command('tessera')
    .description('Tessera: SPIFFE workload identity server, agent, admin and workload tools')
    .version(VERSION)
    // Throw instead of process.exit, and write through the injected streams: run() decides.
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .showSuggestionAfterError(true);
  for (const register of [
    registerServer,
    registerEntry,
    registerToken,
    registerAgent,
    registerBundle,
    registerX509,
    registerJwt,
    registerSvid,
    registerAuthority,
    registerAudit,
    registerHealthcheck,
    registerSts,
    registerIssuer,
    registerTrustPolicy,
    registerFederation,
  ]) {
    register(program, io);
  }
  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    return report(e, io);
  }
}

function report(e: unknown, io: CliIo): number {
  if (e instanceof CommanderError) {
    // Commander has already printed help or its own "error: ..." line.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    return exitCodes.usage;
  }
  const message =
    e instanceof ConnectError ? e.rawMessage : e instanceof Error ? e.message : String(e);
  io.stderr.write(`error: ${message}\n`);
  if (io.env.TESSERA_DEBUG && e instanceof Error && e.stack) io.stderr.write(e.stack + '\n');
  return exitCodeOf(e);
}
