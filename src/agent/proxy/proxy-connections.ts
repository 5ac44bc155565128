// ProxyConnections (proxy-connection.ts), once for every way in: server workloads by name and
// address (from the server, agent/sync/server-workloads.ts), and for an accepted loopback client
// a ProxyConnection — the caller attested through the one attestation path (loopback TCP peer →
// process → selectors → entries; a redirected connection's peer is found by its original
// destination, agent/attestation/tcp-peer.ts), bound to one server workload, counted against the global and
// the per-caller (uid) connection limits, asking the agent's CredentialService for the decision
// and the credential, and reaching only the server workload's host:port.
import { connect, type Socket } from 'node:net';
import type { AccessHttpRequest, ServerWorkload } from '../../core/access.ts';
import {
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
  isTesseraError,
} from '../../core/errors.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import type { ReleasedCredential } from '../cache/credential-cache.ts';
import type { CredentialService, ServedCredential } from '../credentials/credential-service.ts';
import type { ServerWorkloadIndex } from '../sync/server-workloads.ts';
import type { KernelRelay, SpliceClient } from './kernel-relay/kernel-relay.ts';
import type { ProxyConnection, ProxyConnections, ProxyLog } from './proxy-connection.ts';
import { originalDestination } from './transparent/original-dst.ts';

/** A TCP connect to the server workload that has not completed by then fails. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;

export interface ProxyLogger extends ProxyLog {
  child(bindings: Record<string, unknown>): ProxyLogger;
}

/** A credential answered from the cache, for the audit report (cached-use-reporter.ts). */
export type CachedUseSink = (
  caller: AttestedCaller,
  credential: ReleasedCredential,
  wayIn: ProxyConnection['wayIn'],
  request: AccessHttpRequest | undefined,
) => void;

export interface ProxyConnectionsOptions {
  readonly servers: () => ServerWorkloadIndex;
  readonly attestation: Pick<AttestationService, 'identifyTcp' | 'attest' | 'release'>;
  readonly credentials: Pick<CredentialService, 'get'>;
  readonly maxConnections: number;
  readonly maxConnectionsPerUid: number;
  readonly log: ProxyLogger;
  /** Aborted when the agent stops: every connection's signal follows it. */
  readonly signal: AbortSignal;
  readonly onCachedUse?: CachedUseSink;
  /** Splices database sessions once logged in (proxy.kernel_relay); absent: user space only. */
  readonly kernelRelay?: Pick<KernelRelay, 'splice'>;
}

interface Tracked {
  readonly peer: Promise<ConnectionPeer>;
  uid: number | null;
}

/** Where the workload's own end of `client` is, for the kernel relay's send side. */
function spliceClient(client: Socket, peer: ConnectionPeer): SpliceClient | undefined {
  if (!peer.ok || peer.socket === undefined || peer.pin.pidfd === undefined) return undefined;
  return { accepted: client, socket: { pidfd: peer.pin.pidfd, ...peer.socket } };
}

export class AgentProxyConnections implements ProxyConnections {
  readonly #o: ProxyConnectionsOptions;
  readonly #sockets = new Map<Socket, Tracked>();
  readonly #perUid = new Map<number, number>();

  constructor(o: ProxyConnectionsOptions) {
    this.#o = o;
  }

  /** Client connections open now (tests, metrics). */
  get openCount(): number {
    return this.#sockets.size;
  }

  find(host: string, port: number): ServerWorkload | undefined {
    return this.#o.servers().find(host, port);
  }

  byName(name: string): ServerWorkload | undefined {
    return this.#o.servers().byName(name);
  }

  async open(
    client: Socket,
    server: ServerWorkload,
    wayIn: ProxyConnection['wayIn'],
  ): Promise<ProxyConnection> {
    const tracked = this.#track(client, wayIn);
    const signal = AbortSignal.any([this.#o.signal, closedSignal(client)]);
    let caller: AttestedCaller;
    const peer = await tracked.peer;
    try {
      caller = await this.#o.attestation.attest(peer, signal, { reuse: true });
    } catch (e) {
      throw new PermissionDeniedError(
        `could not attest the caller: ${isTesseraError(e) ? e.message : 'attestation failed'}`,
        { cause: e },
      );
    }
    if (caller.entries.length === 0) throw new PermissionDeniedError('no identity issued');
    this.#countUid(tracked, caller.process.uid);
    return this.#connection(server, caller, wayIn, signal, spliceClient(client, peer));
  }

  /** Counts the socket once (several open() on one keep-alive connection share it). */
  #track(client: Socket, wayIn: ProxyConnection['wayIn']): Tracked {
    const known = this.#sockets.get(client);
    if (known) return known;
    if (this.#sockets.size >= this.#o.maxConnections)
      throw new ResourceExhaustedError(
        `too many proxy connections (proxy.max_connections ${this.#o.maxConnections})`,
      );
    // Identified now, at accept: the process holding the client end now is the one pinned.
    const tracked: Tracked = { peer: this.#identify(client, wayIn), uid: null };
    this.#sockets.set(client, tracked);
    client.once('close', () => {
      this.#sockets.delete(client);
      if (tracked.uid !== null) {
        const n = (this.#perUid.get(tracked.uid) ?? 1) - 1;
        if (n <= 0) this.#perUid.delete(tracked.uid);
        else this.#perUid.set(tracked.uid, n);
      }
      void tracked.peer.then((p) => this.#o.attestation.release(p));
    });
    return tracked;
  }

  /**
   * A redirected connection's client socket is connected to where it was going (the original
   * destination, from the kernel's NAT table), not to our listener: the lookup needs that.
   */
  #identify(client: Socket, wayIn: ProxyConnection['wayIn']): Promise<ConnectionPeer> {
    if (wayIn !== 'transparent') return this.#o.attestation.identifyTcp(client);
    let dialled;
    try {
      dialled = originalDestination(client);
    } catch (e) {
      return Promise.resolve({ ok: false, reason: (e as Error).message });
    }
    return this.#o.attestation.identifyTcp(client, dialled);
  }

  #countUid(tracked: Tracked, uid: number): void {
    if (tracked.uid !== null) return;
    const n = this.#perUid.get(uid) ?? 0;
    if (n >= this.#o.maxConnectionsPerUid)
      throw new ResourceExhaustedError(
        `too many proxy connections for uid ${uid} (proxy.max_connections_per_uid ${this.#o.maxConnectionsPerUid})`,
      );
    tracked.uid = uid;
    this.#perUid.set(uid, n + 1);
  }

  #connection(
    server: ServerWorkload,
    caller: AttestedCaller,
    wayIn: ProxyConnection['wayIn'],
    signal: AbortSignal,
    client: SpliceClient | undefined,
  ): ProxyConnection {
    const o = this.#o;
    const log = o.log.child({
      serverWorkload: server.name,
      wayIn,
      pid: caller.process.pid,
      uid: caller.process.uid,
    });
    return {
      server,
      caller,
      wayIn,
      signal,
      log,
      async credential(request?: AccessHttpRequest): Promise<ReleasedCredential> {
        const served: ServedCredential = await o.credentials.get(
          caller,
          { server: server.name, spiffeId: '', ...(request ? { request } : {}) },
          signal,
        );
        if (served.cached) o.onCachedUse?.(caller, served.credential, wayIn, request);
        return served.credential;
      },
      connectUpstream: () => connectUpstream(server, signal),
      splice: (directions) => o.kernelRelay?.splice(directions, client),
      upstreamTlsOptions() {
        return {
          servername: server.host,
          ...(server.tlsCa !== '' ? { ca: server.tlsCa } : {}),
          rejectUnauthorized: true,
        };
      },
    };
  }
}

/** A plain TCP connection to the server workload's own host:port — nowhere else. */
function connectUpstream(server: ServerWorkload, signal: AbortSignal): Promise<Socket> {
  const where = `server workload "${server.name}" (${server.host}:${server.port})`;
  return new Promise<Socket>((resolve, reject) => {
    if (signal.aborted) {
      reject(new UnavailableError(`${where}: the connection was closed`));
      return;
    }
    // Half-open: a client's FIN is passed on and the server workload may still answer.
    const socket = connect({ host: server.host, port: server.port, allowHalfOpen: true });
    const fail = (why: string) => {
      cleanup();
      socket.destroy();
      reject(new UnavailableError(`cannot connect to ${where}: ${why}`));
    };
    const onError = (e: Error) => fail((e as NodeJS.ErrnoException).code ?? e.message);
    const onAbort = () => fail('the client went away');
    const timer = setTimeout(() => fail('timed out'), UPSTREAM_CONNECT_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      cleanup();
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/** Aborts when the socket closes (cached per socket: many open() calls may share one). */
const closedSignals = new WeakMap<Socket, AbortSignal>();
function closedSignal(socket: Socket): AbortSignal {
  let s = closedSignals.get(socket);
  if (!s) {
    const ac = new AbortController();
    if (socket.destroyed) ac.abort(new UnavailableError('the client went away'));
    else socket.once('close', () => ac.abort(new UnavailableError('the client went away')));
    s = ac.signal;
    closedSignals.set(socket, s);
  }
  return s;
}
