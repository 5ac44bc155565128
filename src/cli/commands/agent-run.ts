// `tessera agent run`: the node agent process. Flags override the YAML config.
import type { Command } from 'commander';
// The agent is loaded only when this command runs (and without the server's modules).
import type { AgentRunFlags } from '../../agent/compose.ts';
import { DEFAULT_AGENT_SOCKET } from '../../core/defaults.ts';
import { agentDataDirDefault } from '../paths.ts';
import { optionAlias, type CliIo } from '../context.ts';
import { logFormatOption, untilStopped } from '../signals.ts';

export function registerAgentRun(agent: Command, io: CliIo): void {
  const cmd = agent
    .command('run')
    .description('run the node agent until SIGINT or SIGTERM')
    .option('--config <file>', 'YAML config file')
    .option(
      '--server <host:port,...>',
      'server API address, or several, comma-separated: the agent moves to the next when one stops answering (config server_address)',
    )
    .option('--trust-domain <td>', 'trust domain (config trust_domain)')
    .option(
      '--workload-socket <path>',
      `Workload API socket to serve (config socket_path; env TESSERA_AGENT_SOCKET; default ${DEFAULT_AGENT_SOCKET})`,
    )
    .option(
      '--data-dir <dir>',
      `agent state directory (config data_dir; env TESSERA_AGENT_DATA_DIR; default ${agentDataDirDefault(io.env)})`,
    )
    .option('--join-token <token>', 'attest with a join token (config join_token)')
    .option('--x509pop-cert <file>', 'attest with x509pop: certificate chain (PEM)')
    .option('--x509pop-key <file>', 'attest with x509pop: its private key (PEM)')
    .option(
      '--trust-bundle <file>',
      'server trust bundle for the first contact (PEM or SPIFFE JSON)',
    )
    .option('--trust-bundle-url <url>', 'https URL serving the trust bundle')
    .option(
      '--insecure-bootstrap',
      'trust the server on first contact without verifying it (never in production)',
    )
    .addOption(logFormatOption());
  // The older spelling: everywhere else --socket names the server's admin socket.
  optionAlias(cmd, '--socket <path>', 'workloadSocket');
  // SIGINT/SIGTERM are handled from here on: while loading, bootstrapping and attesting too, a
  // stop is a clean exit 0 (create() rejects once the signal aborted it, leaving nothing open).
  cmd.action(() =>
    untilStopped(io, async (signal) => {
      const { workloadSocket, ...rest } = cmd.opts<
        Omit<AgentRunFlags, 'socket'> & { workloadSocket?: string }
      >();
      const flags: AgentRunFlags = {
        ...rest,
        ...(workloadSocket ? { socket: workloadSocket } : {}),
      };
      const { loadAgentConfig, TesseraAgent } = await import('../../agent/compose.ts');
      const config = loadAgentConfig(flags, io.env);
      if (config.insecure_bootstrap) {
        io.stderr.write(
          'WARNING: --insecure-bootstrap: the server is not verified on first contact. Use --trust-bundle.\n',
        );
      }
      const agent = await TesseraAgent.create(config, { env: io.env, signal }).catch(
        (e: unknown) => {
          if (signal.aborted) return null;
          throw e;
        },
      );
      await agent?.run(signal, (socket) =>
        io.stderr.write(
          `tessera agent ready: ${agent.link.identity?.spiffeId} serving ${socket}\n`,
        ),
      );
    }),
  );
}
