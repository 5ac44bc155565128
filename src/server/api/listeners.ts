// Transport for the API: one HTTP/2 TLS listener presenting the server's SVID (callers present
// SVIDs; we verify them ourselves so rotation never needs a restart), and a local admin socket
// (cleartext HTTP/2, or HTTP/1.1 for the CLI, on a 0600 Unix socket in a 0700 directory) whose
// callers are local admins. No file handling here: the composition root prepares the socket's
// path (compose/admin-socket.ts).
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createContextValues } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import type { TlsMaterial } from '../authority/server-svid.ts';
import type { Peer } from './authenticate.ts';
import { peerKey } from './context-keys.ts';

type Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

export function createApiHandler(
  routes: (router: ConnectRouter) => void,
  interceptor: Interceptor,
  peerOf: (req: http2.Http2ServerRequest) => Peer,
  readMaxBytes: number,
): Handler {
  return connectNodeAdapter({
    routes,
    interceptors: [interceptor],
    readMaxBytes,
    contextValues: (req) =>
      createContextValues().set(peerKey, peerOf(req as http2.Http2ServerRequest)),
  }) as Handler;
}

/** The client certificate chain (leaf first, DER) of a TLS request. Cached per connection. */
const chains = new WeakMap<TLSSocket, Uint8Array[]>();
export function tlsPeer(req: http2.Http2ServerRequest): Peer {
  const socket = req.stream.session?.socket as TLSSocket | undefined;
  if (!socket) return { kind: 'tls', chainDer: [], address: '' };
  let chain = chains.get(socket);
  if (!chain) {
    chain = [];
    let cert = socket.getPeerCertificate(true);
    const seen = new Set<string>();
    while (cert && cert.raw && chain.length < 8 && !seen.has(cert.fingerprint256)) {
      seen.add(cert.fingerprint256);
      chain.push(new Uint8Array(cert.raw));
      cert = cert.issuerCertificate;
    }
    chains.set(socket, chain);
  }
  return { kind: 'tls', chainDer: chain, address: socket.remoteAddress ?? '' };
}

export const localPeer = (): Peer => ({ kind: 'local' });

/**
 * Without `tls` (no server SVID yet) the listener is bound and refuses every handshake until
 * setSecureContext() gives it a certificate.
 */
export async function listenTls(
  host: string,
  port: number,
  tls: TlsMaterial | null,
  handler: Handler,
): Promise<http2.Http2SecureServer> {
  const server = http2.createSecureServer(
    {
      ...(tls ? { key: tls.keyPem, cert: tls.certPem } : {}),
      // Ask for a client certificate but let the handshake finish without one: attestation is
      // anonymous, and SVIDs are verified against the live bundle in Authenticator.
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      allowHTTP1: false,
    },
    handler,
  );
  await listen(server, (cb) => server.listen(port, host, cb));
  return server;
}

/**
 * Listens on the admin socket path (its directory and any stale file are the composition root's:
 * compose/admin-socket.ts), under umask 0177 so the socket is created owner-only.
 */
export async function listenAdminSocket(
  socketPath: string,
  handler: Handler,
): Promise<http2.Http2Server> {
  const server = http2.createServer({}, handler);
  acceptHttp1(server, handler);
  const old = process.umask(0o177);
  try {
    await listen(server, (cb) => server.listen(socketPath, cb));
  } finally {
    process.umask(old);
  }
  return server;
}

/**
 * Lets the admin socket also serve Connect over HTTP/1.1 (Node's cleartext HTTP/2 server has no
 * `allowHTTP1`): each connection's first bytes tell the HTTP/2 preface ("PRI * HTTP/2.0") from an
 * HTTP/1.1 request line, and the connection goes to the HTTP/2 server or to an HTTP/1.1 server
 * with the same handler (the data read stays buffered on the socket for either). The CLI speaks
 * HTTP/1.1 here: loading `node:http2` (with `tls` and `crypto`) was the largest part of a
 * `tessera entry list`'s start-up (~25–40 ms of CPU); `node:http` costs ~5 ms.
 */
function acceptHttp1(server: http2.Http2Server, handler: Handler): void {
  const http1 = http.createServer(handler as unknown as http.RequestListener);
  const toHttp2 = server.listeners('connection') as Array<(socket: net.Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first.subarray(0, 4).toString('latin1') === 'PRI ') {
        for (const l of toHttp2) l.call(server, socket);
      } else {
        http1.emit('connection', socket);
        socket.resume();
      }
    });
  });
  server.on('close', () => http1.close());
}

function listen(
  server: http2.Http2Server | http2.Http2SecureServer,
  start: (cb: () => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    start(() => {
      server.off('error', reject);
      resolve();
    });
  });
}

export function closeServer(server: http2.Http2Server | http2.Http2SecureServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Open HTTP/2 sessions (agent streams) would hold close() forever.
    setTimeout(() => resolve(), 2000).unref();
  });
}
