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
import { handlerFor } from './handlers.ts';
import { KernelRelay } from './kernel-relay/kernel-relay.ts';
import { startLocalListeners, type LocalListeners } from './local-listeners.ts';
import { TransparentListener } from './transparent/transparent-listener.ts';

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
  readonly transparent: TransparentListener | null;
  close(): Promise<void>;
}

export async function startProxy(d: ProxyDeps): Promise<RunningProxy> {
  const kernelRelay = openKernelRelay(d);
  const connections = new AgentProxyConnections({
    servers: d.servers,
    attestation: d.attestation,
    credentials: d.credentials,
    maxConnections: d.config.max_connections,
    maxConnectionsPerUid: d.config.max_connections_per_uid,
    log: d.log,
    signal: d.signal,
    ...(d.onCachedUse ? { onCachedUse: d.onCachedUse } : {}),
    ...(kernelRelay ? { kernelRelay } : {}),
  });
  const listeners =
    d.config.listeners.length > 0
      ? await startLocalListeners({ listeners: d.config.listeners, connections, log: d.log })
      : null;
  let explicit: ExplicitProxy | null = null;
  let transparent: { listener: TransparentListener; close(): Promise<void> } | null = null;
  try {
    explicit = await startExplicit(d, connections);
    transparent = await startTransparent(d, connections);
  } catch (e) {
    await explicit?.close();
    await listeners?.close();
    kernelRelay?.close();
    throw e;
  }
  return {
    connections,
    listeners,
    explicit,
    transparent: transparent?.listener ?? null,
    async close() {
      await transparent?.close();
      await explicit?.close();
      await listeners?.close();
      kernelRelay?.close();
    },
  };
}

/** The kernel relay when a way in is configured and proxy.kernel_relay allows it (logged either way). */
function openKernelRelay(d: ProxyDeps): KernelRelay | undefined {
  const c = d.config;
  const used = c.listeners.length > 0 || c.http_listen !== '' || c.transparent_listen !== '';
  if (!used || c.kernel_relay === 'off') return undefined;
  const opened = KernelRelay.open(2 * c.max_connections);
  if ('relay' in opened) {
    d.log.info({}, 'kernel relay on: database sessions are spliced in the kernel once logged in');
    return opened.relay;
  }
  d.log.info(
    { reason: opened.reason },
    'kernel relay off (config proxy.kernel_relay: auto): database sessions are relayed in user space',
  );
  return undefined;
}

/**
 * The transparent listener, when `proxy.transparent_listen` is set: the port iptables REDIRECTs
 * the selected workloads' connections to (`tessera agent proxy rules`), on 127.0.0.1 and, with
 * proxy.transparent.ipv6, on ::1 too (the same port, as the printed rules say).
 */
async function startTransparent(
  d: ProxyDeps,
  connections: AgentProxyConnections,
): Promise<{ listener: TransparentListener; close(): Promise<void> } | null> {
  const listen = d.config.transparent_listen;
  if (listen === '') return null;
  const first = parseLoopbackListen(listen);
  const addresses = [first];
  if (d.config.transparent.ipv6 && !first.host.includes(':')) {
    addresses.push({ host: '::1', port: first.port });
  }
  let listener: TransparentListener;
  try {
    listener = await TransparentListener.create({
      listen: addresses,
      connections,
      handlerFor: (server) => handlerFor(server.protocol),
      passthrough: d.config.passthrough,
      log: d.log,
      maxConnections: d.config.max_connections,
    });
  } catch (e) {
    throw new FailedPreconditionError(
      `transparent listener ${listen} (config proxy.transparent_listen): cannot listen: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const stop = new AbortController();
  const stopped = listener.run(AbortSignal.any([stop.signal, d.signal]));
  d.log.info(
    {
      listen: addresses.map(
        (a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${listener.port}`,
      ),
      passthrough: d.config.passthrough,
    },
    'transparent listener ready',
  );
  return {
    listener,
    close: () => {
      stop.abort();
      return stopped;
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
