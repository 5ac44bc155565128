// `tessera token generate`: a one-time join token for node attestation. The token alone goes to
// stdout (first line) so `tessera token generate | read t` works; context goes to stderr.
import type { Command } from 'commander';
import { AgentService } from '../../client/api/agent.ts';
import { ttlSeconds } from '../args.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { isoFromSeconds } from '../output.ts';

export function registerToken(program: Command, io: CliIo): void {
  const token = program.command('token').description('manage join tokens');
  const cmd = adminCommand(token, 'generate', 'create a join token for agent attestation', io)
    .option(
      '--spiffe-id <id>',
      "also register this ID as a node alias of the token's agent: entries with it as parent reach that agent",
    )
    .option('--ttl <dur>', 'token lifetime, e.g. 10m (default: server join_token_ttl)');
  adminAction<{ spiffeId?: string; ttl?: string }>(cmd, io, async ({ opts, client, out }) => {
    const res = await client(AgentService).createJoinToken({
      spiffeId: opts.spiffeId ?? '',
      ttl: opts.ttl === undefined ? 0 : ttlSeconds(opts.ttl, '--ttl'),
    });
    const expiresAt = isoFromSeconds(res.expiresAt);
    if (out.json) {
      out.printJson({ token: res.token, agentSpiffeId: res.agentSpiffeId, expiresAt });
      return;
    }
    out.line(res.token);
    out.note(`agent SPIFFE ID: ${res.agentSpiffeId}`);
    if (opts.spiffeId)
      out.note(`node alias: ${opts.spiffeId} (an entry with parent ${res.agentSpiffeId})`);
    out.note(`expires at: ${expiresAt ?? 'never'}`);
  });
}
