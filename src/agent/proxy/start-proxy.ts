// The proxy's ways in, started from the agent's composition root (agent/compose.ts) with the one
// ProxyConnections they share (docs/injection.md). Each way in is off unless configured.
import type { Clock } from '../../core/clock.ts';
import { FailedPreconditionError } from '../../core/errors.ts';
import type { AgentConfig } from '../config/compile.ts';
import { parseLoopbackListen } from '../credentials/listen-address.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { CredentialService } from '../credentials/credential-service.ts';
import type { ServerWorkloadIndex } from '../sync/server-workloads.ts';
import {
  AgentProxyConnections,
  type CachedUseSink,
  type ProxyLogger,
} from './proxy-connections.ts';
import { startExplicitProxy, type ExplicitProxy } from './http/explicit-proxy.ts';
import { ProxyCa } from './http/proxy-ca.ts';
import { startLocalListeners, type LocalListeners } from './local-listeners.ts';

export interface ProxyDeps {
  readonly config: AgentConfig['proxy'];
  /** The agent's data directory: the proxy CA lives there (http/proxy-ca.ts). */
  readonly dataDir: string;
  readonly clock: Clock;
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
  readonly explicit: ExplicitProxy | null;
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
  let explicit: ExplicitProxy | null = null;
  try {
    explicit = await startExplicit(d, connections);
  } catch (e) {
    await listeners?.close();
    throw e;
  }
  return {
    connections,
    listeners,
    explicit,
    async close() {
      await explicit?.close();
      await listeners?.close();
    },
  };
}

/** The explicit HTTP proxy (HTTP_PROXY/HTTPS_PROXY), when `proxy.http_listen` is set. */
async function startExplicit(
  d: ProxyDeps,
  connections: AgentProxyConnections,
): Promise<ExplicitProxy | null> {
  const listen = d.config.http_listen;
  if (listen === '') return null;
  try {
    return await startExplicitProxy({
      ...parseLoopbackListen(listen),
      connections,
      ca: await ProxyCa.open(d.dataDir, d.clock),
      passthrough: d.config.passthrough,
      log: d.log,
    });
  } catch (e) {
    throw new FailedPreconditionError(
      `explicit proxy ${listen} (config proxy.http_listen): cannot start: ${(e as Error).message}`,
      { cause: e },
    );
  }
}
