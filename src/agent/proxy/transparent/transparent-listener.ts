// The transparent way in (docs/injection.md, "Transparent redirect"): connections that iptables
// REDIRECTed to proxy.transparent_listen (rules.ts). For each accepted connection, in order:
//   1. the original destination, from the kernel's NAT table (original-dst.ts) — a connection
//      made to the listener directly has none and is closed;
//   2. the server workload at that address (ProxyConnections.find) — none: closed and logged, or
//      tunnelled untouched when proxy.passthrough is on (never with a credential);
//   3. the handler for its protocol, and the attested ProxyConnection (ProxyConnections.open);
//   4. the handler serves the connection.
// A failure closes that one connection; the listener keeps serving everyone else.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ServerWorkload } from '../../../core/access.ts';
import type { ProxyConnections, ProxyLog, ProxyProtocolHandler } from '../proxy-connection.ts';
import { originalDestination, type OriginalDestination } from './original-dst.ts';

export interface TransparentListenerOptions {
  /** Loopback addresses to listen on (127.0.0.1 and, with IPv6, ::1), one port. */
  readonly listen: readonly { readonly host: string; readonly port: number }[];
  readonly connections: ProxyConnections;
  /** The handler for a server workload's protocol (the proxy's handler catalog). */
  readonly handlerFor: (server: ServerWorkload) => ProxyProtocolHandler | undefined;
  readonly passthrough: boolean;
  readonly log: ProxyLog;
  /** Connections served at once; more are closed at accept. */
  readonly maxConnections: number;
  /** Bound on connecting a passthrough tunnel. Default 10 s. */
  readonly passthroughConnectTimeoutMs?: number;
}

export class TransparentListener {
  readonly #o: TransparentListenerOptions;
  readonly #servers: Server[];
  readonly #sockets = new Set<Socket>();

  private constructor(o: TransparentListenerOptions, servers: Server[]) {
    this.#o = o;
    this.#servers = servers;
  }

  /** Binds every address (all or none). */
  static async create(o: TransparentListenerOptions): Promise<TransparentListener> {
    const servers: Server[] = [];
    const listener = new TransparentListener(o, servers);
    let port = o.listen[0]?.port ?? 0;
    try {
      for (const a of o.listen) {
        // Not paused at accept: bytes wait in the socket until the handler reads them (a paused
        // socket would ignore a handler's 'data' listener). Half-open, as the other ways in.
        const server = createServer({ allowHalfOpen: true }, (s) => listener.#accept(s));
        server.maxConnections = o.maxConnections;
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: a.host, port }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        // A port 0 (tests) is chosen by the first bind and shared by the others.
        port = (server.address() as { port: number }).port;
      }
    } catch (e) {
      for (const s of servers) s.close();
      throw e;
    }
    return listener;
  }

  /** The bound port. */
  get port(): number {
    const first = this.#servers[0]?.address();
    return first !== null && typeof first === 'object' && first !== undefined ? first.port : 0;
  }

  /** Serves until `signal` aborts, then closes the listeners and every open connection. */
  async run(signal: AbortSignal): Promise<void> {
    if (!signal.aborted) {
      await new Promise<void>((resolve) =>
        signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    }
    await Promise.all(
      this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
    for (const s of this.#sockets) s.destroy();
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {}); // reported where it matters; never crash the agent
    this.#serve(socket).catch((e: unknown) => {
      this.#o.log.warn({ err: (e as Error).message }, 'transparent proxy: connection failed');
      socket.destroy();
    });
  }

  async #serve(socket: Socket): Promise<void> {
    const { log } = this.#o;
    let dst: OriginalDestination;
    try {
      dst = originalDestination(socket);
    } catch (e) {
      log.warn(
        { client: socket.remoteAddress, err: (e as Error).message },
        'transparent proxy: no original destination, closed',
      );
      socket.destroy();
      return;
    }
    const to = `${dst.family === 6 ? `[${dst.address}]` : dst.address}:${dst.port}`;
    const server = this.#o.connections.find(dst.address, dst.port);
    if (server === undefined) {
      if (this.#o.passthrough) return this.#tunnel(socket, dst, to);
      log.info(
        { destination: to },
        'transparent proxy: no server workload at the destination, closed',
      );
      socket.destroy();
      return;
    }
    const handler = this.#o.handlerFor(server);
    if (handler === undefined) {
      log.warn(
        { destination: to, server: server.name, protocol: server.protocol },
        'transparent proxy: no handler for the protocol, closed',
      );
      socket.destroy();
      return;
    }
    let conn;
    try {
      conn = await this.#o.connections.open(socket, server, 'transparent');
    } catch (e) {
      log.info(
        { destination: to, server: server.name, err: (e as Error).message },
        'transparent proxy: caller refused, closed',
      );
      socket.destroy();
      return;
    }
    await handler.handle(socket, conn);
  }

  /** proxy.passthrough: the bytes go to the original destination untouched, nothing injected. */
  #tunnel(client: Socket, dst: OriginalDestination, to: string): Promise<void> {
    this.#o.log.info({ destination: to }, 'transparent proxy: passthrough');
    return new Promise<void>((resolve) => {
      const upstream = connect({ host: dst.address, port: dst.port });
      upstream.setTimeout(this.#o.passthroughConnectTimeoutMs ?? 10_000, () => upstream.destroy());
      const done = () => {
        client.destroy();
        upstream.destroy();
        resolve();
      };
      upstream.once('connect', () => {
        upstream.setTimeout(0);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on('error', done);
      upstream.on('close', done);
      client.on('close', done);
    });
  }
}
