// The SPIFFE Workload Endpoint: gRPC (and Connect) over HTTP/2 cleartext on a Unix socket, served
// by connect-node on our own http2 server so that every connection's socket — hence the kernel's
// peer credentials — is in our hands (grpc-js hides it).
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { createContextValues, type ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { file_google_protobuf_struct } from '@bufbuild/protobuf/wkt';
import { Health, file_grpc_health_v1_health } from '../../../proto/gen/grpc/health/v1/health_pb.js';
import * as reflectV1 from '../../../proto/gen/grpc/reflection/v1/reflection_pb.js';
import * as reflectV1alpha from '../../../proto/gen/grpc/reflection/v1alpha/reflection_pb.js';
import { SpiffeWorkloadAPI, file_spiffe_workload } from '../../../proto/gen/spiffe/workload_pb.js';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { connectionPeerKey } from './caller.ts';
import { errorMappingInterceptor } from './error-map.ts';
import { workloadApiHandlers, type WorkloadHandlerDeps } from './handlers.ts';
import { serveFastStream, type FastStreamDeps } from './fast-stream.ts';
import { serveFastUnary } from './fast-unary.ts';
import { ServingStatus, createHealthState, healthHandlers, type HealthState } from './health.ts';
import type { WorkloadIdentitySource } from './identity-source.ts';
import { silentLogger, type WorkloadApiLogger } from './log.ts';
import { reflectionIndex, reflectionV1, reflectionV1alpha } from './reflection.ts';
import { securityHeaderInterceptor, WORKLOAD_SERVICE } from './security-header.ts';
import { JwtResponseFrames } from './jwt-response-frames.ts';
import { SharedResponses } from './shared-responses.ts';
import { bindSocket, removeSocket, type BoundSocket } from './socket-file.ts';

export interface WorkloadApiOptions {
  /** Absolute path of the Unix socket (SPIFFE_ENDPOINT_SOCKET=unix://<socketPath>). */
  readonly socketPath: string;
  readonly source: WorkloadIdentitySource;
  /** Identifies each connection's caller and attests it per call (agent/attestation). */
  readonly attestation: AttestationService;
  readonly log?: WorkloadApiLogger;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. Default 100. */
  readonly maxConcurrentStreams?: number;
  /** Connections served at once; further ones are closed at accept. Default 1024. */
  readonly maxConnections?: number;
  /**
   * Connections one caller (uid) may hold at once; further ones are closed at accept, so one
   * process cannot use up `maxConnections` for everyone. Default 128.
   */
  readonly maxConnectionsPerUid?: number;
  /** A connection that has not sent the HTTP/2 client preface by then is closed. Default 5 s. */
  readonly prefaceTimeoutMs?: number;
  /** Largest request message. The Workload API's requests are tiny. Default 64 KiB. */
  readonly readMaxBytes?: number;
  /** A connection without any open stream is closed after this long. Default 60 s. */
  readonly idleTimeoutMs?: number;
  /** FetchJWTSVID / ValidateJWTSVID wait this long for the source (Unavailable). Default 30 s. */
  readonly jwtTimeoutMs?: number;
  /**
   * Serve plain gRPC calls of FetchJWTSVID and the server streams directly (fast-unary.ts,
   * fast-stream.ts) instead of through connect-node. Default true; false serves every call
   * through Connect (tests run the same suite both ways).
   */
  readonly fastPaths?: boolean;
  /**
   * More gRPC services on the same socket (agent/credentials): their callers are attested the
   * same way and their methods require the security header.
   */
  readonly services?: readonly SocketService[];
}

/** A service served beside the Workload API on its socket. */
export interface SocketService {
  /** Fully qualified name; every method requires the `workload.spiffe.io: true` header. */
  readonly typeName: string;
  /** Registers the Connect route (handlers read the peer with `connectionPeerKey`). */
  readonly register: (router: ConnectRouter) => void;
  /** A direct path for plain gRPC calls: serves the stream and returns true, or touches nothing. */
  readonly fast?: (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    peer: ConnectionPeer,
  ) => boolean;
}

export interface WorkloadApi {
  readonly socketPath: string;
  /** Stops accepting, ends open streams (Unavailable), closes connections, removes the socket. */
  close(): Promise<void>;
}

const SERVICES = [
  WORKLOAD_SERVICE,
  Health.typeName,
  reflectV1.ServerReflection.typeName,
  reflectV1alpha.ServerReflection.typeName,
];

export async function startWorkloadApi(opts: WorkloadApiOptions): Promise<WorkloadApi> {
  const log = opts.log ?? silentLogger;
  const shutdown = new AbortController();
  const health = createHealthState([WORKLOAD_SERVICE]);
  const peers = new WeakMap<http2.Http2Session, ConnectionPeer>();
  const deps = handlerDeps(opts, log, shutdown.signal);
  const readMaxBytes = opts.readMaxBytes ?? 64 * 1024;
  const handler = connectNodeAdapter({
    routes: routes(deps, health, shutdown.signal, opts.services ?? []),
    interceptors: [
      errorMappingInterceptor(log),
      securityHeaderInterceptor([
        WORKLOAD_SERVICE,
        ...(opts.services ?? []).map((s) => s.typeName),
      ]),
    ],
    readMaxBytes,
    grpcWeb: false, // no browser ever talks to a Unix socket
    // Responses are never compressed (compressed requests are still accepted). Over a local
    // socket gzip saves nothing worth having — SVIDs, keys and bundles are DER and barely shrink —
    // and a fresh zlib stream per message was most of the agent's CPU when an entry change is
    // pushed to many open streams (measured with bench/push.bench.ts: 400 streams).
    compressMinBytes: Number.MAX_SAFE_INTEGER,
    contextValues: (req) => {
      const session = (req as http2.Http2ServerRequest).stream?.session;
      const peer = session && peers.get(session);
      return createContextValues().set(connectionPeerKey, peer ?? noPeer);
    },
  });
  const server = http2.createServer(
    {
      settings: {
        maxConcurrentStreams: opts.maxConcurrentStreams ?? 100,
        maxHeaderListSize: 16 * 1024,
        enablePush: false,
      },
      maxHeaderListPairs: 64,
      maxSessionMemory: 8, // MiB per connection, then new streams are refused
    },
    handler,
  );
  server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (opts.fastPaths ?? true) {
    installFastPath(server, {
      ...deps,
      readMaxBytes,
      frames: new JwtResponseFrames(),
      responses: new SharedResponses({ source: opts.source, attestation: opts.attestation }),
      peerOf: (session) => (session && peers.get(session as http2.ServerHttp2Session)) ?? noPeer,
      services: opts.services ?? [],
    });
  }
  const live = trackSessions(server, peers, opts, log);
  const bound = await bindSocket(server, opts.socketPath);
  log.info({ socket: opts.socketPath }, 'workload API listening');
  let closing: Promise<void> | undefined;
  return {
    socketPath: opts.socketPath,
    close: () => (closing ??= stop({ server, live, bound, health, shutdown })),
  };
}

function handlerDeps(
  opts: WorkloadApiOptions,
  log: WorkloadApiLogger,
  shutdown: AbortSignal,
): WorkloadHandlerDeps {
  return {
    source: opts.source,
    attestation: opts.attestation,
    log,
    shutdown,
    jwtTimeoutMs: opts.jwtTimeoutMs ?? 30_000,
  };
}

/**
 * Puts fast-unary.ts and fast-stream.ts in front of connect-node: plain gRPC FetchJWTSVID calls
 * and FetchX509SVID/FetchX509Bundles/FetchJWTBundles streams are served there, every other
 * stream goes on to Node's HTTP/2 compatibility layer (hence Connect) as before.
 * Node installs that layer as the server's one 'stream' listener when a request handler is
 * given; we take it and call it ourselves. If Node ever arranges this differently, we fail at
 * start rather than serve some requests twice.
 */
function installFastPath(
  server: http2.Http2Server,
  d: FastStreamDeps & { readonly services: readonly SocketService[] },
): void {
  const extra = d.services.flatMap((s) => (s.fast ? [s.fast] : []));
  const listeners = server.listeners('stream');
  const compat = listeners[0] as ((...args: unknown[]) => void) | undefined;
  if (listeners.length !== 1 || compat === undefined) {
    throw new Error(`expected one HTTP/2 compat 'stream' listener, found ${listeners.length}`);
  }
  server.removeListener('stream', compat);
  server.on(
    'stream',
    (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => {
      if (serveFastUnary(d, stream, headers) || serveFastStream(d, stream, headers)) return;
      for (const fast of extra) if (fast(stream, headers, d.peerOf(stream.session))) return;
      compat.call(server, stream, headers, ...rest);
    },
  );
}

function routes(
  deps: WorkloadHandlerDeps,
  health: HealthState,
  shutdown: AbortSignal,
  services: readonly SocketService[],
): (router: ConnectRouter) => void {
  const index = reflectionIndex(
    [
      file_spiffe_workload,
      file_google_protobuf_struct,
      file_grpc_health_v1_health,
      reflectV1.file_grpc_reflection_v1_reflection,
      reflectV1alpha.file_grpc_reflection_v1alpha_reflection,
    ],
    SERVICES,
  );
  return (router) => {
    router.service(SpiffeWorkloadAPI, workloadApiHandlers(deps));
    router.service(Health, healthHandlers(health, shutdown));
    router.service(reflectV1.ServerReflection, reflectionV1(index));
    router.service(reflectV1alpha.ServerReflection, reflectionV1alpha(index));
    for (const s of services) s.register(router);
  };
}

/** The per-uid bucket of connections whose caller could not be identified. */
const UNIDENTIFIED = -1;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_CONNECTIONS_PER_UID = 128;

const noPeer: ConnectionPeer = { ok: false, reason: 'not an HTTP/2 request on the socket' };

/** What the accept step learned about a connection, carried on its socket for the session. */
const kConnection = Symbol('workload API connection');

interface Accepted {
  readonly socket: Socket;
  readonly peer: ConnectionPeer;
  /** Over the caller's connection limit: closed as soon as its session exists. */
  readonly refused: boolean;
}

/**
 * Identifies each connection once, at accept (before its HTTP/2 session exists), counts it
 * against its caller's uid, and releases its pin when it closes. Three bounds keep one process
 * from starving the others:
 * - per caller (uid): at most `maxConnectionsPerUid` open connections; more are closed at
 *   accept. Below the global `maxConnections` (Node's accept limit), so one uid flooding the
 *   socket leaves room for every other uid. Connections we could not identify share one bucket;
 * - the HTTP/2 preface: a connection that has not sent its client preface (SETTINGS) within
 *   `prefaceTimeoutMs` is closed, so silent connections cost seconds, not the idle timeout;
 * - idle: a connection with no open stream for `idleMs` (a client that connected and went
 *   quiet) is destroyed; watchers are never cut: their streams are the point of the Workload
 *   API, and they stay open for hours between rotations.
 */
function trackSessions(
  server: http2.Http2Server,
  peers: WeakMap<http2.Http2Session, ConnectionPeer>,
  opts: WorkloadApiOptions,
  log: WorkloadApiLogger,
): Live {
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const prefaceMs = opts.prefaceTimeoutMs ?? 5000;
  const perUidMax = opts.maxConnectionsPerUid ?? DEFAULT_MAX_CONNECTIONS_PER_UID;
  const perUid = new Map<number, number>();
  const live: Live = { sessions: new Set(), sockets: new Set() };
  // Before Node's own listener creates the session: the raw socket is ours here. The raw
  // sockets are tracked too: a session that never got the HTTP/2 preface ignores
  // close()/destroy() once the server is closing, and only destroying its socket ends it.
  server.prependListener('connection', (socket: Socket) => {
    live.sockets.add(socket);
    const peer = opts.attestation.identifyUnix(socket);
    const key = peer.ok ? peer.caller.uid : UNIDENTIFIED;
    const n = (perUid.get(key) ?? 0) + 1;
    perUid.set(key, n);
    const refused = n > perUidMax;
    if (refused && n === perUidMax + 1) {
      log.warn(
        { uid: key === UNIDENTIFIED ? null : key, limit: perUidMax },
        'workload API caller at its connection limit; closing its further connections',
      );
    }
    socket.once('close', () => {
      live.sockets.delete(socket);
      const left = (perUid.get(key) ?? 1) - 1;
      if (left > 0) perUid.set(key, left);
      else perUid.delete(key);
      opts.attestation.release(peer);
    });
    const accepted: Accepted = { socket, peer, refused };
    Object.defineProperty(socket, kConnection, { value: accepted });
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    // session.socket is a proxy that forwards property reads to the net.Socket.
    const accepted = (session.socket as unknown as Record<symbol, Accepted | undefined>)[
      kConnection
    ];
    if (!accepted || accepted.refused) {
      session.destroy();
      accepted?.socket.destroy();
      return;
    }
    const { peer, socket } = accepted;
    live.sessions.add(session);
    if (!peer.ok) log.warn({ reason: peer.reason }, 'could not identify a workload API caller');
    peers.set(session, peer);
    const preface = setTimeout(() => socket.destroy(), prefaceMs);
    session.once('remoteSettings', () => clearTimeout(preface));
    let open = 0;
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      open++;
      stream.once('close', () => open--);
    });
    session.setTimeout(idleMs, () => {
      if (open === 0) session.destroy();
    });
    session.once('close', () => {
      clearTimeout(preface);
      live.sessions.delete(session);
    });
  });
  server.on('sessionError', (err: Error) =>
    log.debug({ err: err.message }, 'workload API connection error'),
  );
  return live;
}

interface Live {
  readonly sessions: Set<http2.ServerHttp2Session>;
  readonly sockets: Set<Socket>;
}

interface Running {
  readonly server: http2.Http2Server;
  readonly live: Live;
  readonly bound: BoundSocket;
  readonly health: HealthState;
  readonly shutdown: AbortController;
}

async function stop(r: Running): Promise<void> {
  // Health watchers hear NOT_SERVING before their streams end.
  r.health.setAll(ServingStatus.NOT_SERVING);
  await new Promise((resolve) => setTimeout(resolve, 20));
  // Open streams end with Unavailable, which tells clients to reconnect (to the next agent).
  r.shutdown.abort();
  const closed = new Promise<void>((resolve) => r.server.close(() => resolve()));
  for (const s of r.live.sessions) s.close(); // GOAWAY; closes once its streams are done
  // Clients that ignore GOAWAY (or never spoke HTTP/2) keep their connection at most this long.
  const grace = setTimeout(() => r.live.sockets.forEach((s) => s.destroy()), 1000);
  await closed;
  clearTimeout(grace);
  removeSocket(r.bound);
}
