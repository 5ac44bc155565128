// Test support (imported only by tests and the bench): a ProxyConnections that stands in for the
// agent's (proxy-core) — server workloads from a list, a fixed caller, and decisions from a
// function — so the HTTP handler and the explicit proxy are tested with real clients and real
// upstream servers before and apart from the agent. Not production code: it attests nobody.
import net from 'node:net';
import type {
  AccessHttpRequest,
  CredentialValue,
  ServerWorkload,
} from '../../../../core/access.ts';
import { UnavailableError } from '../../../../core/errors.ts';
import type { AttestedCaller } from '../../../attestation/caller.ts';
import type { ReleasedCredential } from '../../../cache/credential-cache.ts';
import { CredentialDeniedError } from '../../../credentials/credential-service.ts';
import type { ProxyConnection, ProxyConnections, ProxyLog } from '../../proxy-connection.ts';

export type StandInDecision =
  | { readonly allow: CredentialValue }
  | { readonly deny: string; readonly policy?: string; readonly failedCondition?: string }
  | { readonly unavailable: true };

export const SPIFFE_ID = 'spiffe://example.org/web';

export function serverWorkload(
  w: Partial<ServerWorkload> & Pick<ServerWorkload, 'name' | 'host' | 'port'>,
): ServerWorkload {
  return {
    protocol: 'http',
    pathPrefix: '',
    present: '',
    tls: false,
    tlsCa: '',
    tlsDecrypt: false,
    createdAt: 0,
    updatedAt: 0,
    ...w,
  };
}

export const quietLog: ProxyLog = { info() {}, warn() {}, debug() {} };

export class StandInConnections implements ProxyConnections {
  readonly servers: ServerWorkload[];
  /** Every decision asked, in order (unless `recordAsked` is off, as in the bench). */
  readonly asked: Array<{ server: string; request: AccessHttpRequest | undefined }> = [];
  recordAsked = true;
  opened = 0;
  decide: (w: ServerWorkload, r: AccessHttpRequest | undefined) => StandInDecision;

  constructor(
    servers: ServerWorkload[],
    decide: (w: ServerWorkload, r: AccessHttpRequest | undefined) => StandInDecision,
  ) {
    this.servers = servers;
    this.decide = decide;
  }

  find(host: string, port: number): ServerWorkload | undefined {
    const h = host.toLowerCase();
    return this.servers.find((w) => w.host.toLowerCase() === h && w.port === port);
  }

  byName(name: string): ServerWorkload | undefined {
    return this.servers.find((w) => w.name === name);
  }

  open(
    client: net.Socket,
    server: ServerWorkload,
    wayIn: ProxyConnection['wayIn'],
  ): Promise<ProxyConnection> {
    this.opened++;
    const abort = new AbortController();
    client.once('close', () => abort.abort(new Error('the client went away')));
    const caller: AttestedCaller = {
      process: { pid: process.pid, uid: 0, gid: 0 },
      transport: 'tcp',
      selectors: [],
      entries: [],
    };
    const credential = (request?: AccessHttpRequest): Promise<ReleasedCredential> => {
      if (this.recordAsked) this.asked.push({ server: server.name, request });
      const d = this.decide(server, request);
      if ('unavailable' in d) return Promise.reject(new UnavailableError('the server is away'));
      if ('deny' in d) {
        return Promise.reject(
          new CredentialDeniedError(server.name, SPIFFE_ID, {
            reason: d.deny,
            policy: d.policy ?? '',
            failedCondition: d.failedCondition ?? '',
            correlationId: 'c-1',
          }),
        );
      }
      return Promise.resolve({
        credential: { value: d.allow, expiresAt: null, leaseId: '' },
        spiffeId: SPIFFE_ID,
        server: server.name,
        present: server.present,
        policy: 'p',
        credentialProvider: 'cp',
        correlationId: 'c-1',
      });
    };
    return Promise.resolve({
      server,
      caller,
      wayIn,
      signal: abort.signal,
      credential,
      connectUpstream: () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: server.host, port: server.port });
          s.once('connect', () => {
            s.removeListener('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        }),
      upstreamTlsOptions: () => ({
        servername: server.host,
        ...(server.tlsCa ? { ca: server.tlsCa } : {}),
        rejectUnauthorized: true as const,
      }),
      log: quietLog,
    });
  }
}

/** A loopback listener that hands every connection to `handle` bound to `server` (as proxy-core's local listeners do). */
export async function standInListener(
  connections: ProxyConnections,
  server: ServerWorkload,
  handle: (client: net.Socket, conn: ProxyConnection) => Promise<void>,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    void connections.open(s, server, 'listener').then((conn) => handle(s, conn));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        srv.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}
