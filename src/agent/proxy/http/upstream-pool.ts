// Keep-alive upstream connections for one client connection. For a server workload every
// connection comes from the way in's connectUpstream() — the server workload's host:port and
// nowhere else — wrapped in TLS with full verification (upstreamTlsOptions: servername = host,
// the server workload's CA or the system roots) when the server workload speaks TLS. Destroyed
// with the client connection, so one client's upstream connections never serve another client.
//
// A connection is lent to one request at a time (upstream-exchange.ts) and comes back only when
// its response ended cleanly; one that is idle and receives bytes or closes is dropped.
import net, { type Socket } from 'node:net';
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
  /** An idle connection is closed after this. Default 60 s. */
  readonly idleMs?: number;
}

/** What an upstream connection reports to the request using it. */
export interface UpstreamUser {
  received(chunk: Buffer): void;
  /** No byte came or went for the idle time. */
  timeout(): void;
  /** The connection ended or failed (`error` when it failed). */
  gone(error: Error | undefined): void;
}

/** One upstream connection with its listeners attached once, for all its requests. */
export class UpstreamConnection {
  readonly socket: Socket;
  /** Requests this connection carried before the current one. */
  served = 0;
  #user: UpstreamUser | null = null;
  #error: Error | undefined;

  constructor(socket: Socket, idleMs: number, onGone: (c: UpstreamConnection) => void) {
    this.socket = socket;
    socket.setTimeout(idleMs);
    socket.on('data', (chunk: Buffer) => {
      if (this.#user) this.#user.received(chunk);
      else socket.destroy(); // unasked-for bytes on an idle connection: its framing is off
    });
    socket.on('timeout', () => {
      if (this.#user) this.#user.timeout();
      else socket.destroy();
    });
    socket.on('error', (e) => (this.#error = e));
    socket.on('end', () => socket.destroy());
    socket.once('close', () => {
      onGone(this);
      const u = this.#user;
      this.#user = null;
      u?.gone(this.#error);
    });
  }

  get alive(): boolean {
    return !this.socket.destroyed;
  }

  attach(user: UpstreamUser): void {
    this.#user = user;
  }

  detach(): void {
    this.#user = null;
  }
}

/** The connections one client connection uses to reach one upstream. */
export class UpstreamPool {
  readonly #open: () => Promise<Socket>;
  readonly #max: number;
  readonly #idleMs: number;
  /** Idle connections, the most recently used last. */
  readonly #idle: UpstreamConnection[] = [];
  readonly #waiting: Array<{
    resolve: (c: UpstreamConnection) => void;
    reject: (e: Error) => void;
  }> = [];
  /** Connections open or opening. */
  #count = 0;
  #destroyed = false;

  constructor(open: () => Promise<Socket>, o: UpstreamPoolOptions = {}) {
    this.#open = open;
    this.#max = o.maxSockets ?? 8;
    this.#idleMs = o.idleMs ?? 60_000;
  }

  /** The pool of a server workload's connections (connectUpstream, TLS verified when it speaks TLS). */
  static forServerWorkload(
    conn: Pick<ProxyConnection, 'server' | 'connectUpstream' | 'upstreamTlsOptions'>,
    o: UpstreamPoolOptions = {},
  ): UpstreamPool {
    const timeoutMs = o.connectTimeoutMs ?? 10_000;
    const secure = upstreamIsTls(conn.server);
    const where = `${conn.server.host}:${conn.server.port}`;
    return new UpstreamPool(() => withTimeout(openUpstream(conn, secure), timeoutMs, where), o);
  }

  /** A pool of plain TCP connections to host:port (the explicit proxy's passthrough). */
  static toAddress(host: string, port: number, o: UpstreamPoolOptions = {}): UpstreamPool {
    const timeoutMs = o.connectTimeoutMs ?? 10_000;
    return new UpstreamPool(
      () => withTimeout(connectTcp(host, port), timeoutMs, `${host}:${port}`),
      o,
    );
  }

  /** An idle connection at once, or null. */
  take(): UpstreamConnection | null {
    for (let c = this.#idle.pop(); c; c = this.#idle.pop()) if (c.alive) return c;
    return null;
  }

  /** A new connection when under the limit (or `fresh`), else the next one released. */
  acquire(fresh = false): Promise<UpstreamConnection> {
    if (this.#destroyed) return Promise.reject(new Error('the client connection closed'));
    if (this.#count < this.#max || fresh) return this.#connect();
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** Gives a connection back: kept for the next request when `reusable`, else closed. */
  release(c: UpstreamConnection, reusable: boolean): void {
    c.detach();
    c.served++;
    if (!reusable || !c.alive || this.#destroyed) {
      c.socket.destroy(); // 'close' counts it out and serves a waiter
      return;
    }
    c.socket.resume(); // paused while the client was slow to read
    const next = this.#waiting.shift();
    if (next) next.resolve(c);
    else this.#idle.push(c);
  }

  destroy(): void {
    this.#destroyed = true;
    for (const w of this.#waiting.splice(0)) w.reject(new Error('the client connection closed'));
    for (const c of this.#idle.splice(0)) c.socket.destroy();
  }

  #connect(): Promise<UpstreamConnection> {
    this.#count++;
    return this.#open().then(
      (socket) => {
        const c = new UpstreamConnection(socket, this.#idleMs, (gone) => this.#gone(gone));
        if (this.#destroyed) socket.destroy();
        return c;
      },
      (e: unknown) => {
        this.#count--;
        this.#serveWaiter();
        throw e;
      },
    );
  }

  #gone(c: UpstreamConnection): void {
    this.#count--;
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#serveWaiter();
  }

  /** A connection went away: a waiting request gets a new one. */
  #serveWaiter(): void {
    if (this.#destroyed || this.#count >= this.#max) return;
    const next = this.#waiting.shift();
    if (next) this.#connect().then(next.resolve, next.reject);
  }
}

function connectTcp(host: string, port: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function openUpstream(
  conn: Pick<ProxyConnection, 'connectUpstream' | 'upstreamTlsOptions'>,
  secure: boolean,
): Promise<Socket> {
  const socket = await conn.connectUpstream();
  // Request/response traffic: Nagle's algorithm would hold each small write for an ACK.
  socket.setNoDelay(true);
  if (!secure) return socket;
  return new Promise<Socket>((resolve, reject) => {
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
function withTimeout(p: Promise<Socket>, ms: number, where: string): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(`no connection to ${where} within ${ms} ms`));
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
