// Local listeners (docs/injection.md "Local listeners"): per server workload a loopback port
// (config proxy.listeners) whose connections go to the handler of the server workload's protocol,
// which adds the credential and forwards — the application's configuration points at localhost.
//
// A listener listens from the start. While its server workload is unknown (not synced yet, or
// deleted) it refuses each connection with a log line naming it, and serves as soon as the server
// workload appears: nothing is decided at start.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { FailedPreconditionError, isTesseraError } from '../../core/errors.ts';
import { parseLoopbackListen } from '../credentials/listen-address.ts';
import { handlerFor } from './handlers.ts';
import type { ProxyConnections, ProxyLog, ProxyProtocolHandler } from './proxy-connection.ts';

export interface LocalListenerConfig {
  readonly server_workload: string;
  readonly listen: string;
}

export interface LocalListenersOptions {
  readonly listeners: readonly LocalListenerConfig[];
  readonly connections: ProxyConnections;
  readonly handlers?: readonly ProxyProtocolHandler[];
  readonly log: ProxyLog;
}

export interface LocalListeners {
  /** The bound addresses, in config order (`127.0.0.1:PORT`). */
  readonly addresses: readonly string[];
  close(): Promise<void>;
}

export async function startLocalListeners(o: LocalListenersOptions): Promise<LocalListeners> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const addresses: string[] = [];
  try {
    for (const [i, l] of o.listeners.entries()) {
      const server = createServer({ allowHalfOpen: true }, (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        socket.on('error', () => {}); // a reset client: its handler sees the close
        void serve(o, l, socket);
      });
      const address = await listen(server, l.listen).catch((e: unknown) => {
        throw new FailedPreconditionError(
          `local listener ${l.listen} (config proxy.listeners[${i}].listen): cannot listen: ${(e as Error).message}`,
          { cause: e },
        );
      });
      servers.push(server);
      addresses.push(address);
      const known = o.connections.byName(l.server_workload) !== undefined;
      o.log.info(
        { listen: address, serverWorkload: l.server_workload, known },
        known
          ? 'local listener ready'
          : `local listener ready; server workload "${l.server_workload}" is not known yet: connections are refused until it is`,
      );
    }
  } catch (e) {
    await closeAll(servers, sockets);
    throw e;
  }
  return { addresses, close: () => closeAll(servers, sockets) };
}

async function serve(o: LocalListenersOptions, l: LocalListenerConfig, socket: Socket) {
  const refuse = (fields: Record<string, unknown>, msg: string) => {
    o.log.warn({ listen: l.listen, serverWorkload: l.server_workload, ...fields }, msg);
    socket.destroy();
  };
  const server = o.connections.byName(l.server_workload);
  if (!server)
    return refuse(
      {},
      `local listener refused a connection: server workload "${l.server_workload}" is not known`,
    );
  const handler = handlerFor(server.protocol, o.handlers);
  if (!handler)
    return refuse(
      { protocol: server.protocol },
      `local listener refused a connection: no proxy handler for protocol ${server.protocol}`,
    );
  let conn;
  try {
    conn = await o.connections.open(socket, server, 'listener');
  } catch (e) {
    return refuse(
      { code: isTesseraError(e) ? e.code : 'internal', reason: (e as Error).message },
      'local listener refused a connection',
    );
  }
  try {
    await handler.handle(socket, conn);
  } catch (e) {
    conn.log.warn({ err: (e as Error).message }, 'proxy handler failed');
    socket.destroy();
  }
}

function listen(server: Server, address: string): Promise<string> {
  const { host, port } = parseLoopbackListen(address);
  return new Promise<string>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.removeListener('error', reject);
      const a = server.address() as AddressInfo;
      resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    });
  });
}

async function closeAll(servers: readonly Server[], sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}
