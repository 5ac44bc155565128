// Shared plumbing of the workload-side commands (`svid fetch|watch`, `jwt fetch|validate`,
// `bundle fetch`): they talk to the agent's Workload API, not to the server's admin socket, so
// their socket flag is --workload-socket (--socket, its older spelling, still works; everywhere
// else --socket is the admin socket). Default: $SPIFFE_ENDPOINT_SOCKET (a unix:// or tcp:// URI),
// else the agent's default socket.
import path from 'node:path';
import { type Command, Option } from 'commander';
import { DEFAULT_AGENT_SOCKET } from '../../core/defaults.ts';
import { TesseraError, isTesseraError } from '../../core/errors.ts';
import {
  ENDPOINT_ENV,
  WorkloadClient,
  type WorkloadEndpoint,
} from '../../client/workload/index.ts';
import type { Env } from '../connect.ts';
import { optionAlias, type CliIo } from '../context.ts';
import { outputFormats, Printer, type OutputFormat } from '../output.ts';

/** Bound on a one-shot Workload API call (connect + first message / unary answer). */
export const WORKLOAD_CALL_TIMEOUT_MS = 30_000;

export interface WorkloadOptions {
  workloadSocket: string;
  output: OutputFormat;
}

export interface WorkloadContext<O> {
  opts: O & WorkloadOptions;
  client: WorkloadClient;
  endpoint: WorkloadEndpoint;
  out: Printer;
  io: CliIo;
}

/** The --workload-socket default: $SPIFFE_ENDPOINT_SOCKET, else the agent's default socket path. */
export function defaultWorkloadSocket(env: Env): string {
  return env[ENDPOINT_ENV] || DEFAULT_AGENT_SOCKET;
}

/**
 * A --workload-socket value as a Workload API address: `unix:///path`, `unix:/path` and `tcp://IP:port`
 * URIs are passed on as they are (the SDK checks them); anything else is a filesystem path
 * (relative to the working directory) of a Unix socket.
 */
export function workloadAddress(socket: string): string {
  if (/^(unix|tcp):/i.test(socket) || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(socket)) return socket;
  const encoded = path
    .resolve(socket)
    .split('/')
    .map((seg) => encodeURIComponent(seg))
    .join('/');
  return `unix://${encoded}`;
}

/** A subcommand that talks to the agent over the Workload API. */
export function workloadCommand(
  parent: Command,
  name: string,
  description: string,
  io: CliIo,
): Command {
  const cmd = parent
    .command(name)
    .description(`${description} (Workload API)`)
    .option(
      '--workload-socket <path>',
      `the agent's Workload API socket: a path, unix:///path or tcp://IP:port (env ${ENDPOINT_ENV})`,
      defaultWorkloadSocket(io.env),
    )
    .addOption(
      new Option('--output <format>', 'output format').choices(outputFormats).default('table'),
    );
  return optionAlias(cmd, '--socket <path>', 'workloadSocket');
}

export function workloadAction<O extends object>(
  cmd: Command,
  io: CliIo,
  fn: (ctx: WorkloadContext<O>) => Promise<void>,
): Command {
  return cmd.action(async () => {
    const opts = cmd.opts<O & WorkloadOptions>();
    const out = new Printer(io.stdout, io.stderr, opts.output);
    const client = new WorkloadClient({ address: workloadAddress(opts.workloadSocket) });
    const endpoint = client.endpoint;
    try {
      await fn({ opts, client, endpoint, out, io });
    } catch (e) {
      throw explainWorkloadError(e, endpoint);
    } finally {
      client.close();
    }
  });
}

function describe(ep: WorkloadEndpoint): string {
  return ep.kind === 'unix' ? `socket ${ep.path}` : `address ${ep.uri}`;
}

function systemErrorCode(e: unknown): string | undefined {
  for (let c: unknown = e, i = 0; c instanceof Error && i < 5; c = c.cause, i++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

/** Rewrites Workload API failures into messages that name the socket and say what to do. */
export function explainWorkloadError(e: unknown, ep: WorkloadEndpoint): unknown {
  if (!isTesseraError(e)) return e;
  const where = `the Workload API at ${describe(ep)}`;
  const hint = `(use --workload-socket or ${ENDPOINT_ENV})`;
  if (e.code === 'unavailable') {
    const errno = systemErrorCode(e.cause);
    if (errno === 'EACCES') {
      return new TesseraError(
        'permission_denied',
        `cannot reach ${where} (permission denied) ${hint}`,
        { cause: e },
      );
    }
    if (errno === undefined) {
      return new TesseraError(
        'unavailable',
        `${where}: ${e.message.replace(/^Workload API: /, '')}`,
        {
          cause: e,
        },
      );
    }
    // The SDK already says it exactly: no socket file, or a file nobody listens on.
    if (ep.kind === 'unix' && (errno === 'ENOENT' || errno === 'ECONNREFUSED')) {
      const what = e.message.replace(/^Workload API: /, '');
      return new TesseraError('unavailable', `${what}; is the agent running? ${hint}`, {
        cause: e,
      });
    }
    const why =
      errno === 'ENOENT'
        ? 'no such socket'
        : errno === 'ECONNREFUSED'
          ? 'connection refused'
          : errno;
    return new TesseraError(
      'unavailable',
      `cannot reach ${where} (${why}); is the agent running? ${hint}`,
      { cause: e },
    );
  }
  if (e.code === 'permission_denied' && /no identity issued/.test(e.message)) {
    return new TesseraError(
      'permission_denied',
      `no identity issued to this process by ${where}: no registration entry matches it ` +
        `(uid ${process.getuid?.() ?? '?'}), or the agent has not received it yet`,
      { cause: e },
    );
  }
  return e;
}
