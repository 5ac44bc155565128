// The contract between the proxy's ways in (explicit HTTP proxy, local listeners, transparent
// redirect) and its protocol handlers (HTTP, PostgreSQL, Redis, MySQL) — docs/injection.md.
//
// A way in accepts a loopback TCP connection, knows which server workload it is for (the local
// listener's, the CONNECT/Host target's, the original destination's), and hands the client
// socket with a ProxyConnection to the handler for the server workload's protocol. The handler
// speaks the protocol: it asks for the credential (the decision happens there: attested caller,
// access policy, cache or broker), answers a denial in the protocol's own terms, connects to the
// one upstream the server workload names, authenticates with the credential and relays.
//
// Nothing here does I/O; proxy-core implements ProxyConnection once for every way in.
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { AccessHttpRequest, ServerProtocol, ServerWorkload } from '../../core/access.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { Splice } from './kernel-relay/kernel-relay.ts';
import type { ReleasedCredential } from '../cache/credential-cache.ts';

/** One accepted client connection bound for one server workload. */
export interface ProxyConnection {
  /** The server workload this connection reaches (and the only host it may reach). */
  readonly server: ServerWorkload;
  /** The attested caller (loopback TCP peer → process → selectors → entries). */
  readonly caller: AttestedCaller;
  /** How the connection came in (for logs and audit). */
  readonly wayIn: 'explicit' | 'listener' | 'transparent';
  /** Aborted when the agent stops or the client goes away. */
  readonly signal: AbortSignal;
  /**
   * Decide and obtain the credential for this caller and server workload (agent cache, else the
   * server's release; one correlation id from access.request to access.credential). HTTP
   * handlers pass the request's method, path and host, so that conditions on `request` hold per
   * request. Throws CredentialDeniedError (agent/credentials/credential-service.ts) on a
   * denial — the handler renders it in its protocol's terms — and UnavailableError when the
   * server is away and nothing usable is cached.
   */
  credential(request?: AccessHttpRequest): Promise<ReleasedCredential>;
  /**
   * A plain TCP connection to the server workload's host:port (never anywhere else). Protocols
   * that negotiate TLS in-band (PostgreSQL's SSLRequest, MySQL's SSL flag) upgrade it
   * themselves with upstreamTlsOptions().
   */
  connectUpstream(): Promise<Socket>;
  /**
   * TLS options for the upstream when the server workload requires TLS: servername = host,
   * full certificate verification against the server workload's CA (or the system roots).
   */
  upstreamTlsOptions(): { servername: string; ca?: string; rejectUnauthorized: true };
  /**
   * Hands these directions' bytes to the kernel from now on (kernel-relay/, docs/injection.md
   * "Kernel relay"): bytes arriving on `from` go out of `to` without coming up to the agent.
   * undefined when the agent runs without the kernel relay or a socket cannot be spliced (TLS,
   * bytes buffered): the handler's user-space relay carries everything then, as it always
   * carries what the kernel passes up. Call only at a quiet point of the protocol, when no byte
   * is in flight in a spliced direction; pass the result to relay() for the ends.
   */
  splice?(directions: ReadonlyArray<readonly [from: Duplex, to: Duplex]>): Splice | undefined;
  /** Structured log lines; never pass a credential or anything derived from it. */
  readonly log: ProxyLog;
}

export interface ProxyLog {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  debug(fields: Record<string, unknown>, msg: string): void;
}

/** Speaks one family of protocols between a client and its server workload. */
export interface ProxyProtocolHandler {
  readonly protocols: readonly ServerProtocol[];
  /**
   * Serves the connection until either side closes it. Never throws for the other side's
   * misbehaviour: bad input is answered in the protocol's terms (or the connection closed) and
   * logged; the returned promise settles when the connection is done.
   */
  handle(client: Duplex & { destroy(): void }, conn: ProxyConnection): Promise<void>;
}

/**
 * What every way in uses (proxy-core implements it): server workloads by address, and a
 * ProxyConnection for an accepted loopback client.
 */
export interface ProxyConnections {
  /**
   * The server workload at host:port (host as the client named it: a DNS name or an IP
   * literal, compared case-insensitively), or undefined. Cloud server workloads never match.
   */
  find(host: string, port: number): ServerWorkload | undefined;
  /** The server workload by name, or undefined. */
  byName(name: string): ServerWorkload | undefined;
  /**
   * Attests the client socket's peer (loopback TCP → process) and binds the connection to
   * `server`. Throws PermissionDeniedError when the caller cannot be attested or has no
   * identity (the way in answers it in the protocol's terms, or closes), ResourceExhaustedError
   * past the per-caller connection limit.
   */
  open(
    client: Socket,
    server: ServerWorkload,
    wayIn: ProxyConnection['wayIn'],
  ): Promise<ProxyConnection>;
}
