// The proxy's ways in, started from the agent's composition root (agent/compose.ts) with the one
// ProxyConnections they share (docs/injection.md). Each way in is off unless configured.
import type { AgentConfig } from '../config/compile.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { CredentialService } from '../credentials/credential-service.ts';
import type { ServerWorkloadIndex } from '../sync/server-workloads.ts';
import {
  AgentProxyConnections,
  type CachedUseSink,
  type ProxyLogger,
} from './proxy-connections.ts';
import { startLocalListeners, type LocalListeners } from './local-listeners.ts';

export interface ProxyDeps {
  readonly config: AgentConfig['proxy'];
  readonly servers: () => ServerWorkloadIndex;
  readonly attestation: AttestationService;
  readonly credentials: CredentialService;
  readonly log: ProxyLogger;
  readonly signal: AbortSignal;
  readonly onCachedUse?: CachedUseSink;
}

export interface RunningProxy {
  readonly connections: AgentProxyConnections;
  readonly listeners: LocalListeners | null;
  close(): Promise<void>;
}

export async function startProxy(d: ProxyDeps): Promise<RunningProxy> {
  const connections = new AgentProxyConnections({
    servers: d.servers,
    attestation: d.attestation,
    credentials: d.credentials,
    maxConnections: d.config.max_connections,
    maxConnectionsPerUid: d.config.max_connections_per_uid,
    log: d.log,
    signal: d.signal,
    ...(d.onCachedUse ? { onCachedUse: d.onCachedUse } : {}),
  });
  const listeners =
    d.config.listeners.length > 0
      ? await startLocalListeners({ listeners: d.config.listeners, connections, log: d.log })
      : null;
  return {
    connections,
    listeners,
    async close() {
      await listeners?.close();
    },
  };
}
