// `tessera agent proxy rules` from the agent's compiled config: the listener's port and family,
// the selected uids and cgroups (rules.ts). Re-exported by the agent's composition root, which
// is what the CLI may import.
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { AgentConfig } from '../../config/compile.ts';
import { parseLoopbackListen } from '../../credentials/listen-address.ts';
import { transparentRules } from './rules.ts';

export function transparentRulesFromConfig(config: AgentConfig, agentUid: number): string {
  const { transparent_listen: listen, transparent } = config.proxy;
  if (listen === '') {
    throw new InvalidArgumentError(
      'config: proxy.transparent_listen: not set (the redirect target)',
    );
  }
  const { host, port } = parseLoopbackListen(listen);
  const v6Listener = host.includes(':');
  try {
    return transparentRules({
      port,
      agentUid,
      uids: transparent.uids,
      cgroups: transparent.cgroups,
      ipv4: !v6Listener,
      ipv6: v6Listener || transparent.ipv6,
    });
  } catch (e) {
    throw new InvalidArgumentError(`config: proxy.transparent: ${(e as Error).message}`);
  }
}
