// The explicit HTTP proxy on `proxy.http_listen` (docs/injection.md, "Explicit HTTP proxy"):
// what applications reach through HTTP_PROXY / HTTPS_PROXY. Loopback only: the caller is the
// local process holding the client end, attested per server workload it reaches.
//   - `GET http://host:port/path` to a server workload (host:port and path prefix): decided per
//     request, the credential injected, forwarded (keep-alive, per server workload a pool);
//   - to anything else: 403, or with passthrough forwarded untouched (no attestation, no
//     credential);
//   - `CONNECT host:port`: connect-tunnel.ts.
import net, { type AddressInfo } from 'node:net';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { isLoopback } from '../../attestation/proc-net-tcp.ts';
import type { ProxyConnection, ProxyConnections, ProxyLog } from '../proxy-connection.ts';
import { answer, answerOf } from './http-answer.ts';
import { forwardToServerWorkload, relay } from './http-forward.ts';
import { compileHttpOptions, type HttpHandlerOptions } from './http-handler.ts';
import { discardBody, serveHttp1, type Http1Request } from './http1-connection.ts';
import type { Http1Response } from './http1-response.ts';
import { handleConnect, notServerWorkload } from './connect-tunnel.ts';
import type { ProxyCa } from './proxy-ca.ts';
import { absoluteTarget } from './proxy-target.ts';
import { underPrefix, upstreamHeaders } from './request-head.ts';
import { Scrubber } from './scrub.ts';
import { UpstreamPool } from './upstream-pool.ts';

export interface ExplicitProxyOptions extends HttpHandlerOptions {
  /** A loopback IP literal and a port (0: any free one). */
  readonly host: string;
  readonly port: number;
  readonly connections: ProxyConnections;
  readonly ca: ProxyCa;
  /** Forward requests and tunnels to hosts that are not server workloads, untouched. */
  readonly passthrough: boolean;
  readonly log: ProxyLog;
  /** A CONNECT client must finish its TLS handshake within this. Default 10 s. */
  readonly tlsHandshakeTimeoutMs?: number;
  /** Client connections at once; more are closed at accept. Default 1024. */
  readonly maxConnections?: number;
}

export interface ExplicitProxy {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

interface Bound {
  readonly conn: ProxyConnection;
  readonly pool: UpstreamPool;
}

export async function startExplicitProxy(o: ExplicitProxyOptions): Promise<ExplicitProxy> {
  if (!isLoopback(o.host)) {
    throw new InvalidArgumentError(
      `proxy.http_listen: ${o.host} is not a loopback address (use 127.0.0.1 or [::1])`,
    );
  }
  const httpOptions = compileHttpOptions(o);
  const stop = new AbortController();
  const server = net.createServer({ pauseOnConnect: false }, (socket) => {
    const bound = new Map<string, Promise<Bound>>();
    // Passthrough: the connection to the last target, kept alive while the client stays with it
    // (requests on this HTTP/1.1 connection come one at a time).
    let passthrough: { readonly to: string; readonly pool: UpstreamPool } | null = null;
    socket.once('close', () => {
      passthrough?.pool.destroy();
      for (const b of bound.values())
        void b.then(
          (x) => x.pool.destroy(),
          () => {},
        );
    });
    const boundTo = (name: string, open: () => Promise<ProxyConnection>): Promise<Bound> => {
      let b = bound.get(name);
      if (!b) {
        b = open().then((conn) => ({
          conn,
          pool: UpstreamPool.forServerWorkload(conn, {
            maxSockets: httpOptions.maxUpstreamSockets,
            idleMs: httpOptions.upstreamIdleMs,
          }),
        }));
        // A refusal (attestation) is answered, not kept: the next request asks again.
        b.catch(() => bound.delete(name));
        bound.set(name, b);
      }
      return b;
    };
    // HTTP/1.1 only on this listener.
    const serveAbsolute = async (req: Http1Request, res: Http1Response) => {
      try {
        const t = absoluteTarget(req.url ?? '');
        const w = o.connections.find(t.host, t.port);
        const q = t.path.indexOf('?');
        const inPrefix =
          w !== undefined && underPrefix(q < 0 ? t.path : t.path.slice(0, q), w.pathPrefix);
        if (w && inPrefix && (w.protocol === 'http' || w.protocol === 'https')) {
          const b = await boundTo(w.name, () => o.connections.open(socket, w, 'explicit'));
          req.url = t.path;
          return await forwardToServerWorkload(b.conn, b.pool, req, res);
        }
        if (!o.passthrough) throw notServerWorkload(t.host, t.port);
        const host = t.host.includes(':') ? `[${t.host}]` : t.host;
        const to = `${host}:${t.port}`;
        if (passthrough?.to !== to) {
          passthrough?.pool.destroy();
          const pool = UpstreamPool.toAddress(t.host, t.port, {
            maxSockets: 1,
            idleMs: httpOptions.upstreamIdleMs,
          });
          passthrough = { to, pool };
        }
        await relay(req, res, {
          pool: passthrough.pool,
          where: to,
          path: t.path,
          headers: upstreamHeaders(
            req.rawHeaders,
            t.port === 80 ? host : `${host}:${t.port}`,
            null,
          ),
          scrubber: new Scrubber([]),
          log: o.log,
        });
      } catch (e) {
        discardBody(req);
        answer(res, answerOf(e, o.log));
      }
    };
    socket.on('error', (e) => o.log.debug({ err: e.message }, 'explicit proxy client error'));
    const onRequest = (req: Http1Request, res: Http1Response): void => void serveAbsolute(req, res);
    serveHttp1(socket, httpOptions, o.log, onRequest, (target, s, head) => {
      void handleConnect(
        {
          connections: o.connections,
          ca: o.ca,
          passthrough: o.passthrough,
          http: httpOptions,
          tlsHandshakeTimeoutMs: o.tlsHandshakeTimeoutMs ?? 10_000,
          log: o.log,
          signal: stop.signal,
          client: socket,
        },
        target,
        s,
        head,
      );
    });
  });
  server.maxConnections = o.maxConnections ?? 1024;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => o.log.warn({ err: e.message }, 'explicit proxy listener error'));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const addr = server.address() as AddressInfo;
  o.log.info(
    { address: `${addr.address}:${addr.port}`, passthrough: o.passthrough },
    'explicit HTTP proxy listening',
  );
  return {
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        stop.abort();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
