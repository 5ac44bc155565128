// The MySQL/MariaDB protocol handler of the credential-injection proxy (docs/injection.md,
// "MySQL").
//
// Per client connection: obtain the credential (the decision happens there), connect to the
// server workload and read its greeting; greet the client as that server (its version,
// connection id and capabilities, minus TLS and compression) but with a fresh challenge of the
// proxy's own, and accept whatever the client answers — it knows no password. Then log in to the
// server with the injected credential and the client's session settings (upstream-auth.ts), pass
// the server's OK to the client and relay bytes both ways.
//
// A denial is answered as MySQL answers a wrong password: ERR 1045, SQLSTATE 28000, naming the
// failed condition, after the client's handshake response.
import { isTesseraError, PermissionDeniedError } from '../../../core/errors.ts';
import type { ProxyConnection, ProxyProtocolHandler } from '../proxy-connection.ts';
import { noDelay, readUntil, ReadError, type Stream } from '../handshake-io.ts';
import type { Splice } from '../kernel-relay/kernel-relay.ts';
import { relay } from '../relay.ts';
import {
  buildGreeting,
  CAP,
  errPacket,
  isSslRequest,
  packet,
  PacketError,
  parseHandshakeResponse,
  splitPacket,
  type Greeting,
  type HandshakeResponse,
} from './packets.ts';
import { freshScramble } from './scramble.ts';
import {
  authenticateUpstream,
  greetUpstream,
  MysqlRefusal,
  type Login,
  type Upstream,
} from './upstream-auth.ts';

export interface MysqlHandlerOptions {
  /** Bound on each step before relaying (connect, TLS, each packet; the client's handshake response). Default 10 s. */
  readonly timeoutMs?: number;
}

/** The greeting when no server was reached (a denial): enough for any client to answer. */
const STAND_ALONE: Greeting = {
  serverVersion: Buffer.from('8.0.0-tessera-proxy'),
  connectionId: 0,
  scramble: Buffer.alloc(20),
  capabilities:
    0x1 | // LONG_PASSWORD
    CAP.CONNECT_WITH_DB |
    CAP.PROTOCOL_41 |
    0x2000 | // TRANSACTIONS
    CAP.SECURE_CONNECTION |
    0x20000 | // MULTI_RESULTS
    CAP.PLUGIN_AUTH |
    CAP.CONNECT_ATTRS |
    CAP.PLUGIN_AUTH_LENENC,
  charset: 45, // utf8mb4_general_ci
  status: 0x2, // autocommit
  reserved: Buffer.alloc(10),
  plugin: 'mysql_native_password',
};

/** The server's greeting as the client sees it: the proxy's challenge, no TLS, no compression. */
function clientGreeting(g: Greeting): Greeting {
  return {
    ...g,
    scramble: freshScramble(),
    capabilities:
      ((g.capabilities & ~(CAP.SSL | CAP.COMPRESS | CAP.ZSTD)) |
        CAP.PLUGIN_AUTH |
        CAP.SECURE_CONNECTION) >>>
      0,
    plugin: 'mysql_native_password',
  };
}

export function createMysqlHandler(options: MysqlHandlerOptions = {}): ProxyProtocolHandler {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return {
    protocols: ['mysql'],
    async handle(client, conn) {
      const c = client as Stream;
      c.on('error', () => c.destroy());
      let login: Login;
      let up: Upstream;
      let spliced: Splice | undefined;
      try {
        login = await loginFor(conn);
        up = await greetUpstream(conn, timeoutMs);
      } catch (e) {
        await refuseAfterHandshake(c, conn, toRefusal(e, conn), timeoutMs);
        return;
      }
      try {
        c.write(packet(0, buildGreeting(clientGreeting(up.greeting))));
        const response = await readClientResponse(c, conn, timeoutMs);
        const ok = await authenticateUpstream(
          up,
          response,
          {
            username: login.username || response.username.toString('utf8'),
            password: login.password,
          },
          conn,
          timeoutMs,
        );
        // Logged in: the rest is raw bytes. Splice now, while the client waits for its OK and
        // the server for a command (nothing in flight either way).
        if (up.pending.length === 0) {
          spliced = conn.splice?.([
            [c, up.socket],
            [up.socket, c],
          ]);
        }
        c.write(packet(2, ok));
        if (up.pending.length > 0) c.write(up.pending);
        conn.log.info(
          {
            server: conn.server.name,
            wayIn: conn.wayIn,
            kernelRelay: spliced !== undefined,
            clientSends: spliced?.clientSends ?? false,
          },
          'mysql session relayed',
        );
      } catch (e) {
        up.socket.destroy();
        await refuse(c, conn, toRefusal(e, conn));
        return;
      }
      noDelay(c, up.socket);
      await relay(c, up.socket, conn.signal, spliced);
    },
  };
}

/** The injected login: a password credential's user (or, "" , the client's) or a token as password. */
async function loginFor(conn: ProxyConnection): Promise<Login> {
  const v = (await conn.credential()).credential.value;
  if (v.kind === 'password') return { username: v.username, password: v.password };
  if (v.kind === 'token') return { username: '', password: v.token };
  throw new MysqlRefusal(
    1045,
    '28000',
    `tessera proxy: server workload "${conn.server.name}" released a ${v.kind} credential; MySQL needs a password or token`,
  );
}

function toRefusal(e: unknown, conn: ProxyConnection): MysqlRefusal {
  if (e instanceof MysqlRefusal) return e;
  if (e instanceof PermissionDeniedError) return new MysqlRefusal(1045, '28000', e.message);
  const why = isTesseraError(e) && e.code === 'unavailable' ? e.message : 'internal error';
  if (!isTesseraError(e)) conn.log.warn({ err: String(e) }, 'mysql handler failed');
  return new MysqlRefusal(
    1043,
    '08S01',
    `tessera proxy: no credential for server workload "${conn.server.name}": ${why}`,
  );
}

/** The client's HandshakeResponse41 (untrusted: bounded, parsed strictly). */
async function readClientResponse(
  client: Stream,
  conn: ProxyConnection,
  timeoutMs: number,
): Promise<HandshakeResponse> {
  let got;
  try {
    got = await readUntil(client, Buffer.alloc(0), (b) => splitPacket(b), {
      maxBytes: Infinity,
      timeoutMs,
      signal: conn.signal,
      what: 'handshake response',
    });
  } catch (e) {
    throw new MysqlRefusal(
      1043,
      '08S01',
      `Bad handshake: ${e instanceof ReadError ? e.message : 'read failed'}`,
      e instanceof ReadError ? e.reason : 'closed',
    );
  }
  if (got.value === 'too-large') {
    throw new MysqlRefusal(1153, '08S01', 'Bad handshake: the handshake response is too large');
  }
  if (isSslRequest(got.value.payload)) {
    throw new MysqlRefusal(
      1043,
      '08S01',
      'Bad handshake: the proxy does not offer TLS to clients (loopback)',
    );
  }
  try {
    return parseHandshakeResponse(got.value.payload);
  } catch (e) {
    throw new MysqlRefusal(
      1043,
      '08S01',
      `Bad handshake: ${e instanceof PacketError ? e.message : 'malformed'}`,
    );
  }
}

/** Sends the refusal as the reply to the client's handshake response (sequence 2) and closes. */
async function refuse(client: Stream, conn: ProxyConnection, r: MysqlRefusal): Promise<void> {
  conn.log.info(
    { server: conn.server.name, code: r.code, ...(r.detail ? { detail: r.detail } : {}) },
    'mysql connection refused',
  );
  if (client.destroyed) return;
  await new Promise<void>((resolve) => {
    client.once('close', resolve);
    client.end(packet(2, errPacket(r.code, r.sqlState, r.message)), () => client.destroy());
  });
}

/** Before any server was reached: greet, read the client's answer (bounded), then refuse. */
async function refuseAfterHandshake(
  client: Stream,
  conn: ProxyConnection,
  r: MysqlRefusal,
  timeoutMs: number,
): Promise<void> {
  client.write(packet(0, buildGreeting({ ...STAND_ALONE, scramble: freshScramble() })));
  try {
    await readClientResponse(client, conn, timeoutMs);
  } catch (e) {
    // A client that went away or never answered gets nothing more; one that answered badly
    // still learns why it was refused.
    if (e instanceof MysqlRefusal && ['timeout', 'closed', 'aborted'].includes(e.detail)) {
      client.destroy();
      return;
    }
  }
  await refuse(client, conn, r);
}
