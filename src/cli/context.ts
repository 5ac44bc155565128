// What every command receives: the process's streams and environment (injected so commands run
// in-process under test), plus the shared --socket/--output plumbing for admin commands.
import type { DescService } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { type Command, Option } from 'commander';
import { adminClientFactory, defaultSocketPath, explainConnectError, type Env } from './connect.ts';
import { outputFormats, Printer, type OutputFormat, type Writer } from './output.ts';

export interface CliIo {
  stdout: Writer;
  stderr: Writer;
  env: Env;
  /** Stops long-running commands (server run, audit tail); defaults to SIGINT/SIGTERM only. */
  signal?: AbortSignal;
}

export interface AdminOptions {
  socket: string;
  output: OutputFormat;
}

export type Clients = <S extends DescService>(service: S) => Client<S>;

export interface AdminContext<O> {
  opts: O & AdminOptions;
  client: Clients;
  out: Printer;
  io: CliIo;
}

/** A subcommand that talks to the server over the admin socket. */
export function adminCommand(
  parent: Command,
  name: string,
  description: string,
  io: CliIo,
): Command {
  return parent
    .command(name)
    .description(description)
    .option(
      '--socket <path>',
      'server admin socket (env TESSERA_ADMIN_SOCKET)',
      defaultSocketPath(io.env),
    )
    .addOption(
      new Option('--output <format>', 'output format').choices(outputFormats).default('table'),
    );
}

export function adminAction<O extends object>(
  cmd: Command,
  io: CliIo,
  fn: (ctx: AdminContext<O>) => Promise<void>,
): Command {
  return cmd.action(async () => {
    const opts = cmd.opts<O & AdminOptions>();
    const out = new Printer(io.stdout, io.stderr, opts.output);
    try {
      await fn({ opts, client: adminClientFactory(opts.socket), out, io });
    } catch (e) {
      throw explainConnectError(e, opts.socket);
    }
  });
}

/**
 * Another spelling of `target`'s flag (e.g. an older name kept for scripts): hidden from the
 * help, it sets the same value, so the command reads only the target's attribute.
 */
export function optionAlias(cmd: Command, flags: string, target: string): Command {
  const alias = new Option(flags).hideHelp();
  cmd.addOption(alias);
  cmd.on(`option:${alias.name()}`, (value: unknown) =>
    cmd.setOptionValueWithSource(target, value, 'cli'),
  );
  return cmd;
}

/** Accumulates a repeatable flag: --x a --x b → ['a', 'b']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
