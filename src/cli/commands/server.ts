// `tessera server run`: the server process. Flags override the YAML config file, which overrides
// defaults; the environment sits between the file and the flags (see loadServerConfig).
import type { Command } from 'commander';
// The server is loaded only when this command runs: other commands stay light.
import type { ServerRunFlags, TesseraServer } from '../../server/compose/server.ts';
import { serverDataDirDefault } from '../paths.ts';
import type { CliIo } from '../context.ts';
import { logFormatOption, untilStopped } from '../signals.ts';

export function registerServer(program: Command, io: CliIo): void {
  const server = program.command('server').description('run the Tessera server');
  const runCmd = server
    .command('run')
    .description('run the server until SIGINT or SIGTERM')
    .option('--config <file>', 'YAML config file')
    .option('--trust-domain <td>', 'trust domain, e.g. example.org (config trust_domain)')
    .option(
      '--data-dir <dir>',
      `data directory (config data_dir; env TESSERA_DATA_DIR; default ${serverDataDirDefault(io.env)})`,
    )
    .option('--listen <host:port>', 'mTLS API listener (config listen; default 127.0.0.1:8081)')
    .option(
      '--admin-socket <path>',
      'admin Unix socket (config admin_socket; env TESSERA_ADMIN_SOCKET; default <data-dir>/admin.sock)',
    )
    .option(
      '--datastore-url <url>',
      'postgres://... (config datastore_url; default SQLite in the data dir)',
    )
    .option(
      '--health-listen <host:port>',
      'health and metrics listener, "" to disable (default 127.0.0.1:8082)',
    )
    .option(
      '--public-listen <host:port>',
      'public listener: OIDC discovery, JWKS, bundle endpoint (config public_listen)',
    )
    .option('--public-cert <file>', 'PEM certificate of the public listener (else plain HTTP)')
    .option('--public-key <file>', 'PEM key of the public listener')
    .option(
      '--issuer <url>',
      'OIDC issuer and JWT-SVID iss (config jwt.issuer; default the public listener URL)',
    )
    .addOption(logFormatOption());
  runCmd.action(async () => {
    const flags = runCmd.opts<ServerRunFlags>();
    // SIGINT/SIGTERM are handled from here on, loading and starting included (as the agent's):
    // a stop while the server's modules load (many seconds on a busy machine) ends with exit 0
    // before anything opens; a stop during start-up lets the start finish, then run() sees the
    // aborted signal and shuts down cleanly (exit 0).
    await untilStopped(io, async (signal) => {
      const { loadServerConfig, TesseraServer } = await import('../../server/compose/server.ts');
      // Bad config is an InvalidArgumentError naming the key: exit 2 with that message.
      const config = loadServerConfig(flags, io.env);
      if (signal.aborted) return;
      const server = await TesseraServer.create(config);
      await serve(server, signal, io);
    });
  });
}

async function serve(server: TesseraServer, signal: AbortSignal, io: CliIo): Promise<void> {
  await server.run(signal, (addr, ready) => {
    io.stderr.write(
      `tessera server ${ready ? 'ready' : 'listening, not ready (it cannot sign: see the error above; tessera healthcheck)'}: api ${addr.api}, admin socket ${addr.admin}` +
        (addr.health ? `, health ${addr.health}` : '') +
        (addr.public ? `, public ${addr.public}` : '') +
        '\n',
    );
  });
}
