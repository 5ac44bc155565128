// HTTPS and HTTP/2 on top of the mTLS helpers: servers that check the peer in the connection
// path and again per request (a request on an unverified connection is refused), and clients
// (an https.Agent, an HTTP/2 session) that verify the server before any request is sent.
import http2 from 'node:http2';
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { UnavailableError } from '../../core/errors.ts';
import type { SpiffeId } from '../../core/spiffe-id.ts';
import type { Authorizer } from './authorizer.ts';
import {
  connectMtls,
  followRotation,
  guardClientSocket,
  guardServer,
  tlsClientOptions,
  tlsServerOptions,
  verifyTlsPeer,
  type MtlsOptions,
  type MtlsSource,
} from './tls.ts';

type AnyRequest = IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = ServerResponse | http2.Http2ServerResponse;
export type MtlsRequestHandler<Req extends AnyRequest, Res extends AnyResponse> = (
  req: Req,
  res: Res,
  peer: SpiffeId,
) => void;

const requestPeers = new WeakMap<object, SpiffeId>();

/** The authorized peer of a request served by these helpers. */
export function requestPeer(req: AnyRequest): SpiffeId | undefined {
  return requestPeers.get(req);
}

/** Checks the request's connection (once per socket / HTTP/2 session); refuses with 403 + close. */
function checkRequest(
  req: AnyRequest,
  res: AnyResponse,
  source: MtlsSource,
  authorizer: Authorizer,
  clock: () => number,
): SpiffeId | undefined {
  const session = (req as http2.Http2ServerRequest).stream?.session;
  const sock = req.socket as unknown as TLSSocket;
  try {
    const id = verifyTlsPeer(sock, source, authorizer, clock(), session ?? sock);
    requestPeers.set(req, id);
    return id;
  } catch {
    const close = (): void => void (session ? session.destroy() : sock.destroy());
    const r = res as ServerResponse;
    if (r.headersSent) close();
    else r.writeHead(403).end(close);
    return undefined;
  }
}

function wrap<Req extends AnyRequest, Res extends AnyResponse>(
  handler: MtlsRequestHandler<Req, Res>,
  source: MtlsSource,
  authorizer: Authorizer,
  clock: () => number,
): (req: Req, res: Res) => void {
  return (req, res) => {
    const peer = checkRequest(req, res, source, authorizer, clock);
    if (peer) handler(req, res, peer);
  };
}

/** An https.Server for authorized SPIFFE peers only; follows rotation. */
export function createMtlsHttpsServer(
  source: MtlsSource,
  authorizer: Authorizer,
  handler: MtlsRequestHandler<IncomingMessage, ServerResponse>,
  o: MtlsOptions & { https?: https.ServerOptions } = {},
): https.Server {
  const clock = o.clock ?? Date.now;
  const server = https.createServer(
    { ...o.https, ...tlsServerOptions(source) },
    wrap(handler, source, authorizer, clock),
  );
  server.on('close', guardServer(server, source, authorizer, o));
  return server;
}

/**
 * Makes an HTTP/2 secure server authenticate clients by SPIFFE ID (checked when the session is
 * created, before any stream is read) and follow rotation. Returns an unsubscribe.
 */
export function guardHttp2Server(
  server: http2.Http2SecureServer,
  source: MtlsSource,
  authorizer: Authorizer,
  o: MtlsOptions = {},
): () => void {
  const clock = o.clock ?? Date.now;
  server.prependListener('session', (session: http2.ServerHttp2Session) => {
    const sock = session.socket as TLSSocket;
    try {
      verifyTlsPeer(sock, source, authorizer, clock(), session);
    } catch (e) {
      session.destroy();
      o.onReject?.(e as Error, sock);
    }
  });
  return followRotation(server, source);
}

/** An HTTP/2 secure server (compatibility API) for authorized SPIFFE peers only. */
export function createMtlsHttp2Server(
  source: MtlsSource,
  authorizer: Authorizer,
  handler: MtlsRequestHandler<http2.Http2ServerRequest, http2.Http2ServerResponse>,
  o: MtlsOptions & { http2?: http2.SecureServerOptions } = {},
): http2.Http2SecureServer {
  const clock = o.clock ?? Date.now;
  const server = http2.createSecureServer(
    { ...o.http2, ...tlsServerOptions(source) },
    wrap(handler, source, authorizer, clock),
  );
  server.on('close', guardHttp2Server(server, source, authorizer, o));
  return server;
}

/** An https.Agent whose every new connection presents the current SVID and checks the server. */
export function httpsAgent(
  source: MtlsSource,
  authorizer: Authorizer,
  o: MtlsOptions & { agent?: https.AgentOptions } = {},
): https.Agent {
  const agent = new https.Agent({ keepAlive: true, ...o.agent });
  agent.createConnection = (options): Duplex => {
    const sock = tls.connect({
      ...(options as tls.ConnectionOptions),
      ...tlsClientOptions(source),
    });
    return guardClientSocket(sock, source, authorizer, o);
  };
  return agent;
}

/**
 * An HTTP/2 client session to `authority` (https://host:port). The TLS connection is verified
 * and authorized before the session exists, so no request can reach an unauthorized server.
 */
export async function connectMtlsHttp2(
  authority: string,
  source: MtlsSource,
  authorizer: Authorizer,
  o: MtlsOptions & { http2?: http2.SecureClientSessionOptions } = {},
): Promise<http2.ClientHttp2Session> {
  const url = new URL(authority);
  const sock = await connectMtls(
    source,
    authorizer,
    {
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      ALPNProtocols: ['h2'],
    },
    o,
  );
  if (sock.alpnProtocol !== 'h2') {
    sock.destroy();
    throw new UnavailableError(`${url.host} does not speak HTTP/2 (ALPN)`);
  }
  return http2.connect(authority, { ...o.http2, createConnection: () => sock });
}
