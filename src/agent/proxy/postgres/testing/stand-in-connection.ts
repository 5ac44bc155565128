// A test stand-in for what proxy-core provides: a ProxyConnection for one server workload whose
// credential() answers as the test says, and a loopback listener that hands every accepted
// socket to a protocol handler. Lets the PostgreSQL handler be driven against real servers and
// real clients (psql, pg) without an agent. Never used by production code.
import net, { type Socket } from 'node:net';
import type { Credential, ServerWorkload } from '../../../../core/access.ts';
import type { ReleasedCredential } from '../../../cache/credential-cache.ts';
import type { KernelRelay } from '../../kernel-relay/kernel-relay.ts';
import type { ProxyConnection, ProxyLog, ProxyProtocolHandler } from '../../proxy-connection.ts';

export function serverWorkload(fields: Partial<ServerWorkload> & { port: number }): ServerWorkload {
  return {
    name: 'db',
    host: '127.0.0.1',
    protocol: 'postgres',
    pathPrefix: '',
    present: 'postgres-password',
    tls: false,
    tlsCa: '',
    tlsDecrypt: false,
    createdAt: 0,
    updatedAt: 0,
    ...fields,
  };
}

export function released(username: string, password: string): ReleasedCredential {
  const credential: Credential = {
    value: { kind: 'password', username, password },
    expiresAt: null,
    leaseId: '',
  };
  return {
    credential,
    spiffeId: 'spiffe://example.org/test-client',
    server: 'db',
    present: 'postgres-password',
    policy: 'test-policy',
    credentialProvider: 'test-provider',
    correlationId: 'test-correlation',
  };
}

/** Log lines kept for assertions (a test checks no secret reaches them). */
export class MemoryLog implements ProxyLog {
  readonly lines: string[] = [];
  info(fields: Record<string, unknown>, msg: string): void {
    this.lines.push(`info ${msg} ${JSON.stringify(fields)}`);
  }
  warn(fields: Record<string, unknown>, msg: string): void {
    this.lines.push(`warn ${msg} ${JSON.stringify(fields)}`);
  }
  debug(fields: Record<string, unknown>, msg: string): void {
    this.lines.push(`debug ${msg} ${JSON.stringify(fields)}`);
  }
}

export interface StandIn {
  server: ServerWorkload;
  credential: () => Promise<ReleasedCredential>;
  /** How many times credential() was asked. */
  asked: number;
  /** Database sessions spliced by this kernel relay (absent: user space only). */
  kernelRelay?: Pick<KernelRelay, 'splice'>;
}

export function standInConnection(
  standIn: StandIn,
  log: ProxyLog,
  signal: AbortSignal,
): ProxyConnection {
  const server = standIn.server;
  return {
    server,
    caller: {
      process: { pid: process.pid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
      transport: 'tcp',
      selectors: [],
      entries: [],
    },
    wayIn: 'listener',
    signal,
    credential: () => {
      standIn.asked++;
      return standIn.credential();
    },
    connectUpstream: () =>
      new Promise<Socket>((resolve, reject) => {
        const s = net.connect(server.port, server.host);
        s.once('connect', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      }),
    upstreamTlsOptions: () => ({
      servername: server.host,
      ...(server.tlsCa ? { ca: server.tlsCa } : {}),
      rejectUnauthorized: true,
    }),
    ...(standIn.kernelRelay ? { splice: (d) => standIn.kernelRelay?.splice(d) } : {}),
    log,
  };
}

/** A loopback listener handing each connection to `handler` with a stand-in connection. */
export async function standInListener(
  handler: ProxyProtocolHandler,
  standIn: StandIn,
  log: ProxyLog,
): Promise<{ port: number; close(): Promise<void> }> {
  const stop = new AbortController();
  const sockets = new Set<Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    void handler.handle(socket, standInConnection(standIn, log, stop.signal));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: async () => {
      stop.abort();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}
