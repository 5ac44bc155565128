// The HTTP protocol handler (ProxyProtocolHandler for `http` and `https` server workloads):
// serves one client connection bound to one server workload, over HTTP/1.1 with keep-alive or
// HTTP/2 — chosen by ALPN on a TLS connection the explicit proxy terminated, or by the HTTP/2
// connection preface ("prior knowledge" h2c) on a plain one. Each request is decided and
// forwarded on its own (http-forward.ts); the connection's upstream pool lives as long as it.
//
// The client is untrusted. HTTP/1.1 is read by the proxy's own strict reader (http1-connection.ts:
// smuggling shapes 400, a head over the limit 431, a head not complete in time 408, each with the
// connection closed); HTTP/2 by node's http2.
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { ServerProtocol } from '../../../core/access.ts';
import type { ProxyConnection, ProxyProtocolHandler } from '../proxy-connection.ts';
import { HttpAnswer } from './http-answer.ts';
import type { ClientRequest, ClientResponse } from './http-answer.ts';
import { forwardToServerWorkload } from './http-forward.ts';
import { serveHttp1, writeRaw } from './http1-connection.ts';
import { UpstreamPool } from './upstream-pool.ts';

export interface HttpHandlerOptions {
  /** Largest request head (request line and headers). Default 16 KiB; larger is 431. */
  readonly maxHeadBytes?: number;
  /** Time for a request head to arrive completely (and idle time between requests). Default 10 s. */
  readonly headTimeoutMs?: number;
  /** Upstream silence that ends a request. Default 60 s. */
  readonly upstreamIdleMs?: number;
  /** Upstream connections per client connection. Default 8. */
  readonly maxUpstreamSockets?: number;
}

export interface CompiledHttpOptions {
  readonly maxHeadBytes: number;
  readonly headTimeoutMs: number;
  readonly upstreamIdleMs: number;
  readonly maxUpstreamSockets: number;
}

export function compileHttpOptions(o: HttpHandlerOptions = {}): CompiledHttpOptions {
  return Object.freeze({
    maxHeadBytes: o.maxHeadBytes ?? 16 * 1024,
    headTimeoutMs: o.headTimeoutMs ?? 10_000,
    upstreamIdleMs: o.upstreamIdleMs ?? 60_000,
    maxUpstreamSockets: o.maxUpstreamSockets ?? 8,
  });
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

type Client = Duplex & { destroy(): void; alpnProtocol?: string | false | null };
type RequestHandler = (req: ClientRequest, res: ClientResponse) => void;

export function createHttpHandler(options: HttpHandlerOptions = {}): ProxyProtocolHandler {
  const o = compileHttpOptions(options);
  const protocols: readonly ServerProtocol[] = ['http', 'https'];
  return {
    protocols,
    async handle(client, conn) {
      const pool = UpstreamPool.forServerWorkload(conn, {
        maxSockets: o.maxUpstreamSockets,
        idleMs: o.upstreamIdleMs,
      });
      try {
        await serveHttpConnection(client, o, conn.log, conn.signal, (req, res) => {
          void forwardToServerWorkload(conn, pool, req, res);
        });
      } finally {
        pool.destroy();
      }
    },
  };
}

/**
 * Serves HTTP/1.1 or HTTP/2 on `client` until it closes, calling `onRequest` per request.
 * Used by the handler and by the explicit proxy for terminated CONNECT tunnels.
 */
export async function serveHttpConnection(
  client: Client,
  o: CompiledHttpOptions,
  log: ProxyConnection['log'],
  signal: AbortSignal,
  onRequest: RequestHandler,
): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    client.once('close', () => resolve());
  });
  // Request/response traffic: Nagle's algorithm would hold each small answer for an ACK.
  (client as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  const stop = () => client.destroy();
  signal.addEventListener('abort', stop, { once: true });
  client.on('error', (e: Error) => log.debug({ err: e.message }, 'client connection error'));
  try {
    const kind =
      client.alpnProtocol === 'h2'
        ? 'h2'
        : client.alpnProtocol === 'http/1.1'
          ? 'h1'
          : await sniffPreface(client, o.headTimeoutMs);
    if (kind === 'timeout') {
      writeRaw(client, new HttpAnswer(408, { error: 'request head not received in time' }));
    } else if (kind === 'h2') serveHttp2(client, o, onRequest);
    else serveHttp1(client, o, log, onRequest);
    await closed;
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

function serveHttp2(client: Client, o: CompiledHttpOptions, onRequest: RequestHandler): void {
  const server = http2.createServer(
    {
      maxSessionMemory: 10,
      settings: { maxHeaderListSize: o.maxHeadBytes, enablePush: false },
    },
    onRequest,
  );
  // An idle session is closed (Node destroys it when no 'timeout' listener takes it).
  server.setTimeout(Math.max(o.headTimeoutMs, 30_000));
  server.on('sessionError', () => client.destroy());
  server.emit('connection', client);
  client.resume();
}

/**
 * Whether the first bytes are the HTTP/2 preface. Reads until they differ from it or it is
 * complete, then puts the bytes back for the server that takes the connection.
 */
function sniffPreface(client: Duplex, timeoutMs: number): Promise<'h1' | 'h2' | 'timeout'> {
  return new Promise((resolve) => {
    let seen = Buffer.alloc(0);
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    const settle = (kind: 'h1' | 'h2' | 'timeout') => {
      clearTimeout(timer);
      client.removeListener('data', onData);
      client.removeListener('close', onClose);
      client.pause();
      if (seen.length > 0) client.unshift(seen);
      resolve(kind);
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      if (!seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) settle('h1');
      else if (n === H2_PREFACE.length) settle('h2');
    };
    const onClose = () => settle('h1');
    client.on('data', onData);
    client.once('close', onClose);
  });
}
