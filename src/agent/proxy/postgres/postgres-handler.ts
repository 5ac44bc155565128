// The PostgreSQL protocol handler of the credential-injection proxy (docs/injection.md,
// "PostgreSQL"). The client connects as if no password were needed; the handler reads its
// startup packet, asks for the credential (the access decision), logs in to the server workload
// as the brokered user, hands the client the server's greeting and relays the session.
//
// Steps, in order: negotiate (SSLRequest/GSSENCRequest → 'N': the client leg is loopback) →
// cancel or startup → credential → upstream login → greeting → relay. Every failure before the
// relay is answered with one FATAL ErrorResponse (rendered in `refuse`) and the connection closes.
import type { Duplex } from 'node:stream';
import { CredentialDeniedError } from '../../credentials/credential-service.ts';
import { isTesseraError } from '../../../core/errors.ts';
import type { Splice } from '../kernel-relay/kernel-relay.ts';
import type { ProxyConnection, ProxyProtocolHandler } from '../proxy-connection.ts';
import { relay } from '../relay.ts';
import { CancelKeys } from './cancel-keys.ts';
import { FrameError, FrameReader } from './frame-reader.ts';
import { PostgresError } from './postgres-error.ts';
import { MAX_STARTUP_BYTES, parseStartup, startupLength, type StartupPacket } from './startup.ts';
import { cancel, login, type UpstreamSession } from './upstream.ts';
import {
  SQLSTATE,
  authenticationOk,
  backendKeyData,
  errorResponse,
  negotiateProtocolVersion,
} from './wire.ts';

export interface PostgresHandlerOptions {
  /** Bound on the client's startup and the whole login, until the session relays. */
  readonly startupTimeoutMs?: number;
}

type Client = Duplex & { destroy(): void };
type Startup = Extract<StartupPacket, { kind: 'startup' | 'cancel' }>;

const NO = Buffer.from('N');

export function createPostgresHandler(options: PostgresHandlerOptions = {}): ProxyProtocolHandler {
  const startupTimeoutMs = options.startupTimeoutMs ?? 30_000;
  const keys = new CancelKeys();
  return {
    protocols: ['postgres'],
    async handle(client: Client, conn: ProxyConnection): Promise<void> {
      (client as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      // A reset client must never become an unhandled 'error' (it would stop the agent).
      client.on('error', (e: NodeJS.ErrnoException) =>
        conn.log.debug(
          { server: conn.server.name, err: e.code ?? e.message },
          'postgres client error',
        ),
      );
      const signal = AbortSignal.any([conn.signal, AbortSignal.timeout(startupTimeoutMs)]);
      const reader = new FrameReader(client, MAX_STARTUP_BYTES);
      let session: UpstreamSession | undefined;
      let spliced: Splice | undefined;
      let release = (): void => {};
      try {
        const first = await negotiate(reader, client, signal);
        if (first.kind === 'cancel') {
          await forwardCancel(conn, keys, first, signal);
          reader.detach();
          client.destroy();
          return;
        }
        session = await login(conn, await credentials(conn, first), signal);
        const issued =
          session.backendKey && keys.issue(session.backendKey, conn.server.name, uid(conn));
        release = issued?.release ?? release;
        // Logged in: from here on the session is raw bytes both ways. Splice it now, while the
        // client still waits for ReadyForQuery and the server waits for a query (nothing in
        // flight either way).
        spliced =
          reader.buffered === 0 && session.leftover.length === 0
            ? conn.splice?.([
                [client, session.socket],
                [session.socket, client],
              ])
            : undefined;
        client.write(greeting(first, session, issued?.key));
        conn.log.info(
          {
            server: conn.server.name,
            wayIn: conn.wayIn,
            kernelRelay: spliced !== undefined,
            clientSends: spliced?.clientSends ?? false,
          },
          'postgres session relayed',
        );
      } catch (e) {
        refuse(client, conn, e);
        reader.detach();
        return;
      }
      const leftover = reader.detach();
      if (leftover.length > 0) session.socket.write(leftover);
      if (session.leftover.length > 0) client.write(session.leftover);
      await relay(client, session.socket, conn.signal, spliced).finally(release);
    },
  };
}

/** Reads packets until a startup or cancel request, answering encryption requests with 'N'. */
async function negotiate(
  reader: FrameReader,
  client: Client,
  signal: AbortSignal,
): Promise<Startup> {
  const asked = new Set<string>();
  for (;;) {
    const packet = parseStartup(await reader.startup(signal, startupLength));
    if (packet.kind !== 'ssl' && packet.kind !== 'gssenc') return packet;
    // Each may be asked once; plaintext bytes after it would ride on a request for encryption.
    if (asked.has(packet.kind) || reader.buffered > 0) {
      throw new PostgresError(SQLSTATE.protocolViolation, `unexpected ${packet.kind} request`);
    }
    asked.add(packet.kind);
    client.write(NO);
  }
}

const uid = (conn: ProxyConnection) => conn.caller.process.uid;

async function forwardCancel(
  conn: ProxyConnection,
  keys: CancelKeys,
  packet: { pid: number; secret: number },
  signal: AbortSignal,
): Promise<void> {
  const real = keys.resolve(packet, conn.server.name, uid(conn));
  // As PostgreSQL does: an unknown key gets no answer (nothing to learn from it).
  if (real === undefined) {
    conn.log.info({ server: conn.server.name }, 'postgres cancel request for no session');
    return;
  }
  await cancel(conn, real, signal);
  conn.log.info({ server: conn.server.name }, 'postgres cancel request forwarded');
}

/** The brokered login: its user, its password, and the client's other startup parameters. */
async function credentials(
  conn: ProxyConnection,
  startup: Extract<StartupPacket, { kind: 'startup' }>,
): Promise<{ user: string; password: string; params: Map<string, string> }> {
  if (conn.server.present !== 'postgres-password') {
    throw new PostgresError(
      SQLSTATE.notSupported,
      `server workload "${conn.server.name}" presents "${conn.server.present}"; the PostgreSQL ` +
        'proxy injects only postgres-password',
    );
  }
  const released = await conn.credential();
  const value = released.credential.value;
  if (value.kind !== 'password') {
    throw new PostgresError(
      SQLSTATE.denied,
      `credential provider "${released.credentialProvider}" released a ${value.kind} credential; ` +
        'PostgreSQL needs a username and password',
    );
  }
  const clientUser = startup.params.get('user');
  const user = value.username !== '' ? value.username : (clientUser ?? '');
  if (user === '') {
    throw new PostgresError(
      SQLSTATE.denied,
      'no PostgreSQL user name: neither credential nor client has one',
    );
  }
  // PostgreSQL's default database is the user name the client asked as, not the brokered one.
  const params = new Map<string, string>([['user', user]]);
  const database = startup.params.get('database') ?? clientUser;
  if (database !== undefined) params.set('database', database);
  for (const [k, v] of startup.params) if (k !== 'user' && k !== 'database') params.set(k, v);
  return { user, password: value.password, params };
}

/** What the client sees of the login: AuthenticationOk, then the server's greeting. */
function greeting(
  startup: Extract<StartupPacket, { kind: 'startup' }>,
  session: UpstreamSession,
  key: { pid: number; secret: number } | undefined,
): Buffer {
  const parts: Buffer[] = [];
  if (startup.minor > 0 || startup.protocolOptions.length > 0) {
    parts.push(negotiateProtocolVersion(0, startup.protocolOptions));
  }
  parts.push(authenticationOk());
  if (key !== undefined) parts.push(backendKeyData(key.pid, key.secret));
  for (const m of session.preamble) parts.push(m.raw);
  return Buffer.concat(parts);
}

/** Renders a failure as one FATAL ErrorResponse and closes. Never a credential in it. */
function refuse(client: Client, conn: ProxyConnection, e: unknown): void {
  let reply: Buffer | undefined;
  let sqlstate: string;
  let text: string;
  if (e instanceof PostgresError) {
    sqlstate = e.sqlstate;
    text = e.message;
    reply = e.upstreamError;
  } else if (e instanceof CredentialDeniedError) {
    sqlstate = SQLSTATE.denied;
    text = `tessera: ${e.message}`;
  } else if (isTesseraError(e) && e.code === 'permission_denied') {
    sqlstate = SQLSTATE.denied;
    text = `tessera: ${e.message}`;
  } else if (isTesseraError(e) && e.code === 'unavailable') {
    sqlstate = SQLSTATE.connectionFailure;
    text = `tessera: no credential for server workload "${conn.server.name}": ${e.message}`;
  } else if (e instanceof FrameError) {
    // The client went away or stalled before its startup packet: nobody to answer.
    conn.log.debug(
      { server: conn.server.name, reason: e.reason },
      'postgres client left during startup',
    );
    client.destroy();
    return;
  } else {
    sqlstate = SQLSTATE.internal;
    text = 'tessera: internal error in the PostgreSQL proxy (see the agent log)';
    conn.log.warn({ server: conn.server.name, err: String(e) }, 'postgres proxy failure');
  }
  conn.log.info(
    { server: conn.server.name, wayIn: conn.wayIn, sqlstate, reason: text },
    'postgres connection refused',
  );
  client.end(reply ?? errorResponse(sqlstate, text));
  // end() flushes then half-closes; make sure the socket goes even if the client does not read.
  setTimeout(() => client.destroy(), 5_000).unref();
}
