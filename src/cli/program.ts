// Builds the `tessera` command tree and runs it with injected streams, so tests drive every
// command in-process. Errors become `error: <message>` on stderr and an exit code from the one
// table in exit-codes.ts; stack traces only with TESSERA_DEBUG=1, since expected failures
// (bad input, server refusals) are not bugs.
//
// Start-up cost is the CLI's main cost (operators run it in loops), so only the invoked command
// group is loaded: the table below names every group for the top-level help, and its `load`
// imports the group's module (and with it the Connect client, protos, crypto, ...) on demand.
// `tessera <group> ... --help` loads the real group, so every command's help is complete.
import { Command, CommanderError, Help, type Option } from 'commander';
import { VERSION } from '../core/defaults.ts';
import type { CliIo } from './context.ts';

export type { CliIo } from './context.ts';

type Register = (program: Command, io: CliIo) => void;

export interface CommandGroup {
  name: string;
  /** Must equal the description the group's module registers (a test compares the help). */
  description: string;
  /** Usage term shown after the name in the top-level help, e.g. "[options]" for a leaf command. */
  term?: string;
  load(): Promise<Register>;
}

/** Every top-level command, in help order. */
export const commandTable: readonly CommandGroup[] = [
  {
    name: 'server',
    description: 'run the Tessera server',
    load: async () => (await import('./commands/server.ts')).registerServer,
  },
  {
    name: 'entry',
    description: 'manage registration entries',
    load: async () => (await import('./commands/entry.ts')).registerEntry,
  },
  {
    name: 'token',
    description: 'manage join tokens',
    load: async () => (await import('./commands/token.ts')).registerToken,
  },
  {
    name: 'agent',
    description: 'manage attested agents',
    load: async () => (await import('./commands/agent.ts')).registerAgent,
  },
  {
    name: 'bundle',
    description: 'trust bundles',
    load: async () => (await import('./commands/bundle.ts')).registerBundle,
  },
  {
    name: 'x509',
    description: 'X509-SVIDs',
    load: async () => (await import('./commands/x509.ts')).registerX509,
  },
  {
    name: 'jwt',
    description: 'JWT-SVIDs',
    load: async () => (await import('./commands/jwt.ts')).registerJwt,
  },
  {
    name: 'svid',
    description: "this process's X509-SVIDs from the agent's Workload API",
    load: async () => (await import('./commands/svid.ts')).registerSvid,
  },
  {
    name: 'authority',
    description: 'manage signing authorities (X.509 CA, JWT keys)',
    load: async () => (await import('./commands/authority.ts')).registerAuthority,
  },
  {
    name: 'audit',
    description: 'read and verify the audit log',
    load: async () => (await import('./commands/audit.ts')).registerAudit,
  },
  {
    name: 'healthcheck',
    description: 'check that the server is up and ready',
    term: '[options]',
    load: async () => (await import('./commands/healthcheck.ts')).registerHealthcheck,
  },
  {
    name: 'sts',
    description: 'RFC 8693 token exchange (client)',
    load: async () => (await import('./commands/sts.ts')).registerSts,
  },
  {
    name: 'issuer',
    description: 'external OIDC issuers whose tokens the token exchange accepts',
    load: async () => (await import('./commands/issuer.ts')).registerIssuer,
  },
  {
    name: 'trust-policy',
    description: 'trust policies of the token exchange (which external tokens get what)',
    load: async () => (await import('./commands/trust-policy.ts')).registerTrustPolicy,
  },
  {
    name: 'federation',
    description: 'SPIFFE federation relationships with other trust domains',
    load: async () => (await import('./commands/federation.ts')).registerFederation,
  },
  {
    name: 'secret',
    description: 'the encrypted secret store (values are write-only)',
    load: async () => (await import('./commands/secret.ts')).registerSecret,
  },
  {
    name: 'posture',
    description: 'vulnerability posture from scanner reports (trivy, grype, osv-scanner)',
    load: async () => (await import('./commands/posture.ts')).registerPosture,
  },
  {
    name: 'server-workload',
    description: 'server workloads: the APIs and databases clients are granted access to',
    load: async () => (await import('./commands/server-workload.ts')).registerServerWorkload,
  },
  {
    name: 'credential-provider',
    description: 'credential providers: where released credentials come from',
    load: async () =>
      (await import('./commands/credential-provider.ts')).registerCredentialProvider,
  },
  {
    name: 'access-policy',
    description: 'access policies: which clients may reach which server workloads',
    load: async () => (await import('./commands/access-policy.ts')).registerAccessPolicy,
  },
  {
    name: 'credential',
    description: "this process's credentials for server workloads, from the agent",
    load: async () => (await import('./commands/credential.ts')).registerCredential,
  },
  {
    name: 'attest',
    description: "this process's signed identity document from the agent",
    term: '[options]',
    load: async () => (await import('./commands/attest.ts')).registerAttest,
  },
  {
    name: 'proxy',
    description: "the agent's credential-injection proxy",
    load: async () => (await import('./commands/proxy.ts')).registerProxy,
  },
  {
    name: 'cloud',
    description: 'point unmodified cloud SDKs (AWS, Google Cloud, Azure) at the agent',
    load: async () => (await import('./commands/cloud.ts')).registerCloud,
  },
];

function newProgram(io: CliIo): Command {
  return (
    new Command('tessera')
      .description('Tessera: SPIFFE workload identity server, agent, admin and workload tools')
      .version(VERSION)
      // Throw instead of process.exit, and write through the injected streams: run() decides.
      .exitOverride()
      .configureOutput({
        writeOut: (s) => void io.stdout.write(s),
        writeErr: (s) => void io.stderr.write(s),
      })
      .showSuggestionAfterError(true)
  );
}

/**
 * The command tree with the groups named in `load` registered for real and every other group as
 * a name and description only (enough for the top-level help and "did you mean").
 */
export async function buildProgram(
  io: CliIo,
  load: (group: CommandGroup) => boolean = () => true,
): Promise<Command> {
  const program = newProgram(io);
  const terms = new Map<Command, string>();
  // Set before any command is added: subcommands copy their parent's help settings.
  program.configureHelp({
    // The stubs have no options or arguments: show the real group's usage term instead.
    subcommandTerm(this: Help, cmd: Command): string {
      const term = terms.get(cmd);
      return term ? `${cmd.name()} ${term}` : Help.prototype.subcommandTerm.call(this, cmd);
    },
    // Commander enforces required options but does not say which they are.
    optionDescription(this: Help, option: Option): string {
      const text = Help.prototype.optionDescription.call(this, option);
      return option.mandatory ? `${text} (required)` : text;
    },
  });
  const chosen = commandTable.filter(load);
  const registers = await Promise.all(chosen.map((g) => g.load()));
  for (const group of commandTable) {
    const register = registers[chosen.indexOf(group)];
    if (register) {
      register(program, io);
    } else {
      const stub = program.command(group.name).description(group.description);
      if (group.term) terms.set(stub, group.term);
    }
  }
  return program;
}

/** The group the arguments invoke (`tessera help <group>` included), if any. */
export function invokedGroup(argv: readonly string[]): CommandGroup | undefined {
  const words = argv.filter((a) => !a.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return commandTable.find((g) => g.name === name);
}

/** Runs the CLI; resolves to the process exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const group = invokedGroup(argv);
    const program = await buildProgram(io, (g) => g === group);
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    return report(e, io);
  }
}

async function report(e: unknown, io: CliIo): Promise<number> {
  // Commander has already printed the help or version it was asked for (`tessera` alone prints
  // the help as an error: exit 2).
  if (e instanceof CommanderError && e.exitCode === 0) return 0;
  // Failure paths only: the error table pulls in the Connect runtime, which --version and
  // --help never need.
  const [{ ConnectError }, { exitCodeOf }] = await Promise.all([
    import('@connectrpc/connect'),
    import('./exit-codes.ts'),
  ]);
  // Commander has already printed its own "error: ..." line.
  if (e instanceof CommanderError) return exitCodeOf(e);
  const message =
    e instanceof ConnectError ? e.rawMessage : e instanceof Error ? e.message : String(e);
  io.stderr.write(`error: ${message}\n`);
  if (io.env.TESSERA_DEBUG && e instanceof Error && e.stack) io.stderr.write(e.stack + '\n');
  return exitCodeOf(e);
}
