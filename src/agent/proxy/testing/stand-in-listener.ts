// Tests only: a loopback listener that hands every accepted client to one protocol handler with a
// stand-in ProxyConnection (fixed server workload, fixed credential or error), so a handler is
// driven by unmodified clients against real servers without the agent around it. The real
// ProxyConnection (attestation, decision, audit) is proxy-core's; its black-box tests cover it.
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Credential, ServerProtocol, ServerWorkload } from '../../../core/access.ts';
import type { ReleasedCredential } from '../../cache/credential-cache.ts';
import type { KernelRelay } from '../kernel-relay/kernel-relay.ts';
import type { ProxyConnection, ProxyProtocolHandler } from '../proxy-connection.ts';

export interface StandInOptions {
  readonly handler: ProxyProtocolHandler;
  readonly server: {
    readonly name?: string;
    readonly host: string;
    readonly port: number;
    readonly protocol: ServerProtocol;
    readonly tls?: boolean;
    readonly tlsCa?: string;
  };
  /** What credential() answers: a credential, or an error it throws. */
  readonly credential: Credential | Error;
  /** Sessions spliced by this kernel relay (absent: user space only). */
  readonly kernelRelay?: Pick<KernelRelay, 'splice'>;
}

export interface StandIn {
  readonly port: number;
  /** Every log line the handler wrote (tests check no secret is among them). */
  readonly logs: string[];
  /** Connections the handler has finished serving. */
  readonly finished: () => number;
  close(): Promise<void>;
}

export async function startStandIn(o: StandInOptions): Promise<StandIn> {
  const server: ServerWorkload = {
    name: o.server.name ?? 'test-db',
    host: o.server.host,
    port: o.server.port,
    protocol: o.server.protocol,
    pathPrefix: '',
    present: '',
    tls: o.server.tls ?? false,
    tlsCa: o.server.tlsCa ?? '',
    tlsDecrypt: false,
    createdAt: 0,
    updatedAt: 0,
  };
  const logs: string[] = [];
  const log = (level: string) => (fields: Record<string, unknown>, msg: string) => {
    logs.push(`${level} ${msg} ${JSON.stringify(fields)}`);
  };
  const stop = new AbortController();
  const sockets = new Set<Socket>();
  let finished = 0;
  const conn = (): ProxyConnection => ({
    server,
    caller: { process: { pid: 0, uid: 0, gid: 0 }, transport: 'tcp', selectors: [], entries: [] },
    wayIn: 'listener',
    signal: stop.signal,
    credential: async (): Promise<ReleasedCredential> => {
      if (o.credential instanceof Error) throw o.credential;
      return {
        credential: o.credential,
        spiffeId: 'spiffe://example.org/test-client',
        server: server.name,
        present: '',
        policy: 'test-policy',
        credentialProvider: 'test-provider',
        correlationId: 'test-correlation',
      };
    },
    ...(o.kernelRelay ? { splice: (d) => o.kernelRelay?.splice(d) } : {}),
    connectUpstream: () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect({ host: server.host, port: server.port });
        s.once('connect', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      }),
    upstreamTlsOptions: () => ({
      servername: server.host,
      ...(server.tlsCa ? { ca: server.tlsCa } : {}),
      rejectUnauthorized: true as const,
    }),
    log: { info: log('info'), warn: log('warn'), debug: log('debug') },
  });
  const listener: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void o.handler.handle(socket, conn()).finally(() => {
      finished += 1;
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return {
    port: (listener.address() as AddressInfo).port,
    logs,
    finished: () => finished,
    close: async () => {
      stop.abort();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}
