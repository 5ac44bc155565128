// The server workloads an agent's proxy may reach (release.proto ListAgentServerWorkloads):
// every one but the cloud targets (their SDKs call the agent's cloud endpoints; nothing is
// proxied). The access revision is read first, so the list is at least as new as the revision it
// is sent with: an agent that sees a newer revision on its sync stream asks again.
import { type ServerWorkload, isCloudProtocol } from '../../core/access.ts';

export interface AgentServerWorkloadsSource {
  readonly access: { listServerWorkloads(): Promise<ServerWorkload[]> };
  readonly accessRevision: { current(): Promise<number> };
}

export interface AgentServerWorkloadList {
  readonly serverWorkloads: readonly ServerWorkload[];
  readonly revision: number;
}

export async function agentServerWorkloads(
  store: AgentServerWorkloadsSource,
): Promise<AgentServerWorkloadList> {
  const revision = await store.accessRevision.current();
  const all = await store.access.listServerWorkloads();
  return { serverWorkloads: all.filter((w) => !isCloudProtocol(w.protocol)), revision };
}
