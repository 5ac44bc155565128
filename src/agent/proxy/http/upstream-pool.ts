// Keep-alive upstream connections for one client connection: an http.Agent whose every socket
// comes from the way in's connectUpstream() — the server workload's host:port and nowhere else —
// wrapped in TLS with full verification (upstreamTlsOptions: servername = host, the server
// workload's CA or the system roots) when the server workload speaks TLS. Destroyed with the
// client connection, so one client's upstream connections never serve another client.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { ServerWorkload } from '../../../core/access.ts';
import type { ProxyConnection } from '../proxy-connection.ts';

/** Whether requests to this server workload go over TLS. */
export function upstreamIsTls(w: ServerWorkload): boolean {
  return w.protocol === 'https' || w.tls === true;
}

export interface UpstreamPoolOptions {
  /** Upstream connections kept per client connection. Default 8. */
  readonly maxSockets?: number;
  /** Bound on the TCP connect and the TLS handshake together. Default 10 s. */
  readonly connectTimeoutMs?: number;
}

/** The connections one client connection uses to reach its server workload. */
export class UpstreamPool extends http.Agent {
  readonly #open: () => Promise<Duplex>;

  constructor(
    conn: Pick<ProxyConnection, 'server' | 'connectUpstream' | 'upstreamTlsOptions' | 'signal'>,
    o: UpstreamPoolOptions = {},
  ) {
    super({ keepAlive: true, maxSockets: o.maxSockets ?? 8, maxFreeSockets: o.maxSockets ?? 8 });
    const timeoutMs = o.connectTimeoutMs ?? 10_000;
    const secure = upstreamIsTls(conn.server);
    this.#open = () => withTimeout(openUpstream(conn, secure), timeoutMs, conn.server);
  }

  override createConnection(
    _options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    this.#open().then(
      (s) => callback?.(null, s),
      (e: unknown) => callback?.(e as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

async function openUpstream(
  conn: Pick<ProxyConnection, 'connectUpstream' | 'upstreamTlsOptions'>,
  secure: boolean,
): Promise<Duplex> {
  const socket = await conn.connectUpstream();
  // Request/response traffic: Nagle's algorithm would hold each small write for an ACK.
  socket.setNoDelay(true);
  if (!secure) return socket;
  return new Promise<Duplex>((resolve, reject) => {
    const t = tls.connect({ ...conn.upstreamTlsOptions(), socket, ALPNProtocols: ['http/1.1'] });
    const fail = (e: Error) => {
      t.destroy();
      socket.destroy();
      reject(e);
    };
    t.once('error', fail);
    t.once('secureConnect', () => {
      t.removeListener('error', fail);
      resolve(t);
    });
  });
}

/** The connection within `ms`, else an error; one that arrives later is closed, not leaked. */
function withTimeout(p: Promise<Duplex>, ms: number, w: ServerWorkload): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(`no connection to ${w.host}:${w.port} within ${ms} ms`));
    }, ms);
    p.then(
      (s) => {
        clearTimeout(timer);
        if (late) s.destroy();
        else resolve(s);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}
