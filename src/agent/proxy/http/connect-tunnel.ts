// `CONNECT host:port` on the explicit proxy, decided in this order:
//   - a server workload marked tls_decrypt: the caller is attested and the policy decides
//     (request { method: CONNECT, path: "", host }); only if allowed, the proxy answers 200 and
//     terminates TLS itself with a certificate for exactly that host from the proxy CA, then
//     serves HTTP/1.1 or HTTP/2 (ALPN) inside like a local listener — every request decided
//     again and the credential injected, re-originated with full verification of the real server;
//   - another server workload: tunnelled untouched to its host:port, only if the policy allows;
//   - anything else (IP literals included): 403, unless passthrough is on — then tunnelled
//     untouched. Never an open relay by default.
// A TLS client that never finishes its handshake is cut off after the handshake timeout.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { ServerWorkload } from '../../../core/access.ts';
import type { ProxyConnection, ProxyConnections, ProxyLog } from '../proxy-connection.ts';
import { answerOf, HttpAnswer } from './http-answer.ts';
import { forwardToServerWorkload } from './http-forward.ts';
import { serveHttpConnection, type CompiledHttpOptions } from './http-handler.ts';
import { writeRaw } from './http1-connection.ts';
import type { ProxyCa } from './proxy-ca.ts';
import { connectTarget } from './proxy-target.ts';
import { UpstreamPool } from './upstream-pool.ts';

export interface ConnectContext {
  readonly connections: ProxyConnections;
  readonly ca: ProxyCa;
  readonly passthrough: boolean;
  readonly http: CompiledHttpOptions;
  readonly tlsHandshakeTimeoutMs: number;
  readonly log: ProxyLog;
  readonly signal: AbortSignal;
  /** The accepted client socket (attested by ProxyConnections.open). */
  readonly client: net.Socket;
}

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** `target`: the CONNECT's request target (authority-form, untrusted). */
export async function handleConnect(
  c: ConnectContext,
  target: string,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  socket.on('error', (e: Error) => c.log.debug({ err: e.message }, 'CONNECT client error'));
  try {
    const t = connectTarget(target);
    const w = c.connections.find(t.host, t.port);
    if (w === undefined) {
      if (!c.passthrough) throw notServerWorkload(t.host, t.port);
      return await tunnel(socket, head, net.connect({ host: t.host, port: t.port }), c.log);
    }
    const conn = await c.connections.open(c.client, w, 'explicit');
    await conn.credential({ method: 'CONNECT', path: '', host: t.host });
    if (w.tlsDecrypt === true && (w.protocol === 'https' || w.protocol === 'http')) {
      return await decrypt(c, conn, w, socket, head);
    }
    return await tunnel(socket, head, await conn.connectUpstream(), c.log);
  } catch (e) {
    writeRaw(socket, answerOf(e, c.log));
  }
}

export function notServerWorkload(host: string, port: number): HttpAnswer {
  const what = net.isIP(host) !== 0 ? `IP address ${host}` : host;
  return new HttpAnswer(403, {
    error: `${what}:${port} is not a server workload: the proxy reaches only server workloads (passthrough is off)`,
  });
}

/** Relays bytes both ways once the upstream connects; 502 when it does not. */
function tunnel(client: Duplex, head: Buffer, upstream: net.Socket, log: ProxyLog): Promise<void> {
  return new Promise<void>((resolve) => {
    const fail = (e: Error) => {
      writeRaw(client, new HttpAnswer(502, { error: `could not connect: ${e.message}` }));
      resolve();
    };
    const ready = () => {
      upstream.removeListener('error', fail);
      upstream.on('error', (e) => {
        log.debug({ err: e.message }, 'tunnel upstream error');
        client.destroy();
      });
      client.on('error', () => upstream.destroy());
      client.write(ESTABLISHED);
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream).on('close', () => client.destroy());
      upstream.pipe(client);
      upstream.once('close', () => {
        client.destroy();
        resolve();
      });
      client.once('close', () => upstream.destroy());
    };
    upstream.once('error', fail);
    if (upstream.connecting) upstream.once('connect', ready);
    else ready();
  });
}

/** Terminates the client's TLS with a proxy-CA certificate for the host and serves HTTP inside. */
async function decrypt(
  c: ConnectContext,
  conn: ProxyConnection,
  w: ServerWorkload,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const leaf = await c.ca.leafFor(w.host);
  socket.write(ESTABLISHED);
  if (head.length > 0) socket.unshift(head);
  // A tls.Server of one connection: it runs the handshake (with its timeout) and hands over a
  // finished server-side TLSSocket, which HTTP/2 needs.
  const terminator = tls.createServer({
    ...leaf,
    ALPNProtocols: ['h2', 'http/1.1'],
    handshakeTimeout: c.tlsHandshakeTimeoutMs,
  });
  const secure = await new Promise<tls.TLSSocket | null>((resolve) => {
    terminator.once('secureConnection', resolve);
    terminator.once('tlsClientError', (e: Error) => {
      c.log.info({ server: w.name, err: e.message }, 'client TLS handshake failed or timed out');
      resolve(null);
    });
    socket.once('close', () => resolve(null));
    terminator.emit('connection', socket);
  });
  if (secure === null) {
    socket.destroy();
    return;
  }
  const pool = UpstreamPool.forServerWorkload(conn, {
    maxSockets: c.http.maxUpstreamSockets,
    idleMs: c.http.upstreamIdleMs,
  });
  try {
    await serveHttpConnection(secure, c.http, c.log, c.signal, (req, res) => {
      void forwardToServerWorkload(conn, pool, req, res);
    });
  } finally {
    pool.destroy();
    secure.destroy();
    socket.destroy();
  }
}
