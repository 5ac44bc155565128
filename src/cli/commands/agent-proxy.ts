// `tessera agent proxy rules`: the iptables (and ip6tables) rules that redirect the selected
// workloads' connections to the agent's transparent listener (docs/injection.md, "Transparent
// redirect"), from the agent's config. Printed for an operator to read and apply; never applied.
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { CliIo } from '../context.ts';

export function registerAgentProxy(agent: Command, io: CliIo): void {
  const proxy = agent.command('proxy').description("the agent's credential-injection proxy");
  const rules = proxy
    .command('rules')
    .description('print the iptables rules for the transparent redirect (proxy.transparent)')
    .option('--config <file>', 'the agent YAML config file')
    .option(
      '--agent-uid <uid>',
      "the uid the agent runs as, whose connections are never redirected (default: this command's)",
    );
  rules.action(async () => {
    const opts = rules.opts<{ config?: string; agentUid?: string }>();
    const agentUid = opts.agentUid === undefined ? process.getuid?.() : Number(opts.agentUid);
    if (agentUid === undefined || !Number.isInteger(agentUid) || agentUid < 0) {
      throw new InvalidArgumentError(`--agent-uid: expected a uid, got "${opts.agentUid ?? ''}"`);
    }
    const { loadAgentConfig, transparentRulesFromConfig } = await import('../../agent/compose.ts');
    const config = loadAgentConfig(
      opts.config === undefined ? {} : { config: opts.config },
      io.env,
    );
    io.stdout.write(transparentRulesFromConfig(config, agentUid));
  });
}
