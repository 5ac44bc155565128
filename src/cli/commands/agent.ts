// `tessera agent ...`: attested agents (nodes): list, show, ban, evict; and `agent run`.
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.ts';
import { AgentService } from '../../client/api/agent.ts';
import type { AttestedNode } from '../../client/api/types.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { registerAgentProxy } from './agent-proxy.ts';
import { registerAgentRun } from './agent-run.ts';
import { agentFields, agentHeaders, agentJson, agentRow } from '../views.ts';

export function registerAgent(program: Command, io: CliIo): void {
  const agent = program.command('agent').description('manage attested agents');
  registerList(agent, io);
  const show = adminCommand(agent, 'show', 'show one agent', io).requiredOption(
    '--spiffe-id <id>',
    'agent SPIFFE ID',
  );
  adminAction<{ spiffeId: string }>(show, io, async ({ opts, client, out }) => {
    const res = await client(AgentService).getAgent({ spiffeId: opts.spiffeId });
    if (!res.agent) throw new Error('the server returned no agent');
    if (out.json) out.printJson(agentJson(res.agent));
    else out.fields(agentFields(res.agent));
  });
  registerChange(agent, io, 'ban', 'ban an agent: it can no longer renew or re-attest', 'banned');
  registerChange(agent, io, 'evict', 'delete an agent so it must attest again', 'evicted');
  registerAgentRun(agent, io);
  registerAgentProxy(agent, io);
}

function registerList(agent: Command, io: CliIo): void {
  const cmd = adminCommand(agent, 'list', 'list agents (every page)', io)
    .option('--banned <bool>', 'only banned (true) or unbanned (false) agents')
    .option('--attestation-type <type>', 'only agents attested with this type, e.g. join_token');
  adminAction<{ banned?: string; attestationType?: string }>(
    cmd,
    io,
    async ({ opts, client, out }) => {
      if (opts.banned !== undefined && opts.banned !== 'true' && opts.banned !== 'false') {
        throw new InvalidArgumentError(`--banned: must be true or false, got "${opts.banned}"`);
      }
      const agents: AttestedNode[] = [];
      let pageToken = '';
      do {
        const res = await client(AgentService).listAgents({
          byBanned: opts.banned ?? '',
          byAttestationType: opts.attestationType ?? '',
          pageToken,
        });
        agents.push(...res.agents);
        pageToken = res.nextPageToken;
      } while (pageToken !== '');
      if (out.json) out.printJson({ agents: agents.map(agentJson) });
      else out.table(agentHeaders, agents.map(agentRow));
    },
  );
}

function registerChange(
  agent: Command,
  io: CliIo,
  name: 'ban' | 'evict',
  description: string,
  done: string,
): void {
  const cmd = adminCommand(agent, name, description, io).requiredOption(
    '--spiffe-id <id>',
    'agent SPIFFE ID',
  );
  adminAction<{ spiffeId: string }>(cmd, io, async ({ opts, client, out }) => {
    const c = client(AgentService);
    await (name === 'ban'
      ? c.banAgent({ spiffeId: opts.spiffeId })
      : c.evictAgent({ spiffeId: opts.spiffeId }));
    if (out.json) out.printJson({ spiffeId: opts.spiffeId, [done]: true });
    else out.line(`${done} ${opts.spiffeId}`);
  });
}
