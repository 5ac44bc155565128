// Opens every listener of a running server — the mTLS API (with the https_spiffe bundle
// endpoint), the local admin socket, health/metrics and the public listener (OIDC discovery,
// https_web bundle, token exchange) — and closes them again. All requests go through the one API
// interceptor (rate limits, authentication, default-deny authorization, error mapping).
import { readFileSync } from 'node:fs';
import type http2 from 'node:http2';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Store } from '../../store/types.ts';
import { Authenticator } from '../api/authenticate.ts';
import { apiInterceptor } from '../api/interceptor.ts';
import {
  closeServer,
  createApiHandler,
  listenAdminSocket,
  listenTls,
  localPeer,
  tlsPeer,
} from '../api/listeners.ts';
import { ApiRateLimits } from '../api/rate-limits.ts';
import { registerServices, type ApiServices } from '../api/router.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import type { ServerConfig } from './config/compile.ts';
import { prepareAdminSocket, restrictAdminSocket } from './admin-socket.ts';
import { startHealthServer } from '../http/health-server.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import type { ServerMetrics } from './metrics.ts';
import { startPublicServer, withBundleEndpoint } from '../http/public-server.ts';
import { AdminSocketInUseError, ListenError, type ListenerName } from '../http/listen-error.ts';
import { RateLimiter } from '../http/rate-limit.ts';
import type { ServerSvid } from '../authority/server-svid.ts';
import type { TokenExchange } from '../sts/exchange.ts';
import type { TokenIntrospection } from '../sts/introspection.ts';

export interface ListenerDeps {
  readonly config: ServerConfig;
  readonly store: Store;
  readonly bundles: BundleCache;
  readonly index: EntryIndex;
  readonly services: ApiServices;
  readonly serverSvid: ServerSvid;
  readonly tokenExchange: TokenExchange | undefined;
  readonly introspection: TokenIntrospection | undefined;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** /readyz: throws when not ready. */
  checkReady(): Promise<void>;
}

/** Where each listener ended up ("" for one that is off); ports 0 resolved. */
export interface ListenerAddresses {
  readonly api: string;
  readonly admin: string;
  readonly health: string;
  readonly public: string;
}

export interface OpenListeners {
  readonly addresses: ListenerAddresses;
  /** Ends open sessions and closes every listener. */
  close(): Promise<void>;
}

/** The public listener's certificate chain and key, read from the operator's files. */
function readTls(certFile: string, keyFile: string): { cert: string; key: string } | undefined {
  if (!certFile || !keyFile) return undefined;
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

export async function openListeners(d: ListenerDeps): Promise<OpenListeners> {
  const c = d.config;
  // One set of buckets for the API listener (the admin socket is never limited).
  const rateLimits = new ApiRateLimits(c.rate_limit, (kind) =>
    d.metrics.apiRateLimited.inc({ kind }),
  );
  const handlerFor = (peerOf: typeof tlsPeer) =>
    createApiHandler(
      (router) => registerServices(router, d.services),
      apiInterceptor({
        authenticator: new Authenticator({
          store: d.store,
          bundles: d.bundles,
          index: d.index,
          agents: d.services.agents,
          clock: d.clock,
          trustDomain: c.trust_domain,
        }),
        auditor: d.services.auditor,
        log: (msg, fields) => d.log.error(fields, msg),
        observe: (method, code, seconds) => {
          d.metrics.rpcs.inc({ method, code });
          d.metrics.rpcSeconds.observe({ method }, seconds);
        },
        rateLimits,
      }),
      peerOf,
      c.max_request_bytes,
    );
  // All or nothing: a listener that cannot open closes the ones already open and names itself
  // and its flag, so the process stops at once instead of serving half.
  const closers: Array<() => Promise<unknown>> = [];
  const open = async <T>(
    what: ListenerName,
    address: string,
    start: () => Promise<T>,
    close: (t: T) => Promise<unknown>,
  ): Promise<T> => {
    try {
      const t = await start();
      closers.push(() => close(t));
      return t;
    } catch (e) {
      await Promise.allSettled(closers.map((f) => f()));
      throw e instanceof AdminSocketInUseError ? e : new ListenError(what, address, e);
    }
  };
  const [host, port] = splitHostPort(c.listen);
  const api = await open(
    'api',
    c.listen,
    () =>
      listenTls(
        host,
        port,
        d.serverSvid.current,
        withBundleEndpoint(handlerFor(tlsPeer), () => d.bundles.bundle),
      ),
    closeServer,
  );
  d.serverSvid.onChange((m) => api.setSecureContext({ key: m.keyPem, cert: m.certPem }));
  const sessions = trackSessions(api);
  const admin = await open(
    'admin',
    c.admin_socket,
    async () => {
      await prepareAdminSocket(c.admin_socket);
      const server = await listenAdminSocket(c.admin_socket, handlerFor(localPeer));
      restrictAdminSocket(c.admin_socket);
      return server;
    },
    closeServer,
  );
  trackSessions(admin, sessions);
  const health = c.health_listen
    ? await open(
        'health',
        c.health_listen,
        () =>
          startHealthServer(...splitHostPort(c.health_listen), {
            registry: d.metrics.registry,
            checkReady: () => d.checkReady(),
          }),
        (h) => h.close(),
      )
    : null;
  const pub = c.public_listen
    ? await open(
        'public',
        c.public_listen,
        () =>
          startPublicServer({
            host: splitHostPort(c.public_listen)[0],
            port: splitHostPort(c.public_listen)[1],
            issuer: c.jwt.issuer,
            tls: readTls(c.public_cert_file, c.public_key_file),
            bundle: () => d.bundles.bundle,
            tokenExchange: d.tokenExchange,
            introspection: d.introspection,
            rateLimit: c.sts
              ? new RateLimiter({
                  perSecond: c.sts.rate_limit.per_second,
                  burst: c.sts.rate_limit.burst,
                })
              : undefined,
            onRateLimited: () => d.metrics.rateLimited.inc(),
          }),
        (p) => p.close(),
      )
    : null;
  const withPort = (hp: string, p: number) => hp.replace(/:0$/, `:${p}`);
  return {
    addresses: {
      api: `${host}:${(api.address() as { port: number }).port}`,
      admin: c.admin_socket,
      health: health
        ? withPort(c.health_listen, (health.server.address() as { port: number }).port)
        : '',
      public: pub ? withPort(c.public_listen, pub.port) : '',
    },
    async close() {
      for (const s of sessions) s.destroy();
      await Promise.all(closers.map((f) => f()));
    },
  };
}

function splitHostPort(hp: string): [string, number] {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i).replace(/^\[|\]$/g, ''), Number(hp.slice(i + 1))];
}

function trackSessions(
  server: http2.Http2Server | http2.Http2SecureServer,
  sessions = new Set<http2.ServerHttp2Session>(),
): Set<http2.ServerHttp2Session> {
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  return sessions;
}
