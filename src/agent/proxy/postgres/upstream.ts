// The upstream leg: connect to the server workload (TLS in-band when it requires TLS, verified),
// start up as the brokered user and authenticate with the brokered password — SCRAM-SHA-256
// (server signature verified), md5, or cleartext only inside TLS — then collect what the server
// says until it is ready for queries.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { ProxyConnection } from '../proxy-connection.ts';
import type { BackendKey } from './cancel-keys.ts';
import { FrameError, FrameReader, type Frame } from './frame-reader.ts';
import { PostgresError } from './postgres-error.ts';
import { SCRAM_SHA_256, ScramError, scramProve, scramStart, scramVerify } from './scram.ts';
import type { ScramClientStart, ScramProof } from './scram.ts';
import {
  AUTH_CLEARTEXT,
  AUTH_MD5,
  AUTH_OK,
  AUTH_SASL,
  AUTH_SASL_CONTINUE,
  AUTH_SASL_FINAL,
  SQLSTATE,
  cancelRequest,
  cstrings,
  errorFields,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
  sslRequest,
  startupMessage,
} from './wire.ts';

/** Largest message accepted from the upstream before it is ready (errors, parameters, SASL). */
const MAX_MESSAGE_BYTES = 256 * 1024;
/** Most messages between AuthenticationOk and ReadyForQuery. */
const MAX_PREAMBLE_MESSAGES = 1000;

export interface UpstreamSession {
  readonly socket: Socket | TLSSocket;
  /** ParameterStatus, NoticeResponse, … and ReadyForQuery, raw, in order; BackendKeyData apart. */
  readonly preamble: readonly Frame[];
  /** The server's BackendKeyData, when it sent one. */
  readonly backendKey: BackendKey | undefined;
  /** Bytes read past ReadyForQuery (the server spoke first); relayed before the rest. */
  readonly leftover: Buffer;
}

export interface Login {
  /** Startup parameters, `user` being the brokered username. */
  readonly params: ReadonlyMap<string, string>;
  readonly user: string;
  readonly password: string;
}

const where = (conn: ProxyConnection) =>
  `server workload "${conn.server.name}" (${conn.server.host}:${conn.server.port})`;

/** A plain or TLS connection to the server workload, ready for a startup packet. */
async function open(conn: ProxyConnection, signal: AbortSignal): Promise<Socket | TLSSocket> {
  let socket: Socket;
  try {
    socket = await conn.connectUpstream();
  } catch (e) {
    throw new PostgresError(
      SQLSTATE.unableToConnect,
      `cannot reach ${where(conn)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  socket.setNoDelay(true);
  // Errors surface as the reader's or the relay's; none may go unhandled in between.
  socket.on('error', () => {});
  if (conn.server.tls !== true) return socket;
  socket.write(sslRequest());
  const reader = new FrameReader(socket, 16);
  let answer: number;
  try {
    answer = await reader.byte(signal);
  } catch (e) {
    socket.destroy();
    throw new PostgresError(SQLSTATE.unableToConnect, `${where(conn)}: ${(e as Error).message}`);
  }
  // Anything after the 'S' arrived before TLS, unprotected: refuse it (CVE-2021-23222).
  const extra = reader.detach();
  if (answer !== 0x53 || extra.length > 0) {
    socket.destroy();
    throw new PostgresError(
      SQLSTATE.rejectedEstablishment,
      answer === 0x4e
        ? `${where(conn)} refuses TLS, which the server workload requires`
        : `${where(conn)} answered the TLS request with unexpected bytes`,
    );
  }
  const secure = tls.connect({ socket, ...conn.upstreamTlsOptions() });
  try {
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      signal.addEventListener('abort', () => reject(new Error('timed out')), { once: true });
    });
  } catch (e) {
    secure.destroy();
    throw new PostgresError(
      SQLSTATE.unableToConnect,
      `TLS to ${where(conn)} failed: ${tlsWhy(conn, e)}`,
    );
  }
  return secure;
}

/** Node's reason without its advice to the operator of a Node program ("; try running …"). */
function tlsWhy(conn: ProxyConnection, e: unknown): string {
  const { message, code } = e as NodeJS.ErrnoException;
  const reason = message.split(';')[0] ?? message;
  if (code === undefined || !/CERT|VERIFY|ISSUER|SELF_SIGNED|HOSTNAME|ALTNAME/.test(code))
    return reason;
  const against = conn.server.tlsCa ? "the server workload's CA" : 'the system roots';
  return `${reason} (${code}), verified against ${against}`;
}

/** Connects, authenticates as `login` and reads up to ReadyForQuery. */
export async function login(
  conn: ProxyConnection,
  creds: Login,
  signal: AbortSignal,
): Promise<UpstreamSession> {
  const socket = await open(conn, signal);
  const reader = new FrameReader(socket, MAX_MESSAGE_BYTES);
  try {
    socket.write(startupMessage(creds.params));
    await authenticate(conn, reader, socket, creds, signal);
    const preamble: Frame[] = [];
    let backendKey: BackendKey | undefined;
    for (let i = 0; i < MAX_PREAMBLE_MESSAGES; i++) {
      const m = await reader.message(signal, MAX_MESSAGE_BYTES);
      if (m.type === 'E') throw upstreamError(conn, m);
      if (m.type === 'K' && m.body.length === 8) {
        backendKey = { pid: m.body.readInt32BE(0), secret: m.body.readInt32BE(4) };
        continue;
      }
      preamble.push(m);
      if (m.type === 'Z') return { socket, preamble, backendKey, leftover: reader.detach() };
    }
    throw new PostgresError(SQLSTATE.protocolViolation, `${where(conn)} never became ready`);
  } catch (e) {
    reader.detach();
    socket.destroy();
    throw asPostgresError(conn, e);
  }
}

/** The authentication exchange, until AuthenticationOk. */
async function authenticate(
  conn: ProxyConnection,
  reader: FrameReader,
  socket: Socket,
  creds: Login,
  signal: AbortSignal,
): Promise<void> {
  let scram: { start: ScramClientStart; proof?: ScramProof; verified: boolean } | undefined;
  for (let step = 0; step < 8; step++) {
    const m = await reader.message(signal, MAX_MESSAGE_BYTES);
    if (m.type === 'E') throw upstreamError(conn, m);
    if (m.type === 'N' || m.type === 'v') continue;
    if (m.type !== 'R' || m.body.length < 4) {
      throw new PostgresError(
        SQLSTATE.protocolViolation,
        `${where(conn)} sent '${m.type}' during authentication`,
      );
    }
    const code = m.body.readInt32BE(0);
    const data = m.body.subarray(4);
    if (code === AUTH_OK) {
      // A server that skips the SCRAM final step has not proved it knows the password's keys.
      if (scram !== undefined && !scram.verified) throw new ScramError('server skipped SASLFinal');
      return;
    }
    if (code === AUTH_CLEARTEXT) {
      if (conn.server.tls !== true) {
        throw new PostgresError(
          SQLSTATE.rejectedEstablishment,
          `${where(conn)} asks for a cleartext password without TLS; the proxy sends it only ` +
            'inside TLS (set tls on the server workload, or use scram-sha-256)',
        );
      }
      socket.write(passwordMessage(creds.password));
    } else if (code === AUTH_MD5 && data.length === 4) {
      socket.write(passwordMessage(md5Password(creds.user, creds.password, data)));
    } else if (code === AUTH_SASL && scram === undefined) {
      const mechanisms = cstrings(data);
      if (!mechanisms.includes(SCRAM_SHA_256)) {
        throw new PostgresError(
          SQLSTATE.notSupported,
          `${where(conn)} offers SASL ${mechanisms.join(', ').slice(0, 128)}, not ${SCRAM_SHA_256}`,
        );
      }
      scram = { start: scramStart(), verified: false };
      socket.write(saslInitialResponse(SCRAM_SHA_256, Buffer.from(scram.start.clientFirst)));
    } else if (code === AUTH_SASL_CONTINUE && scram !== undefined && scram.proof === undefined) {
      scram.proof = await scramProve(scram.start, data.toString('utf8'), creds.password);
      socket.write(saslResponse(Buffer.from(scram.proof.clientFinal)));
    } else if (code === AUTH_SASL_FINAL && scram?.proof !== undefined && !scram.verified) {
      scramVerify(scram.proof, data.toString('utf8'));
      scram.verified = true;
    } else {
      throw new PostgresError(
        SQLSTATE.notSupported,
        `${where(conn)} asks for authentication method ${code}, which the proxy does not speak ` +
          '(scram-sha-256, md5, or password over TLS)',
      );
    }
  }
  throw new PostgresError(SQLSTATE.protocolViolation, `${where(conn)}: authentication too long`);
}

/** md5 password: "md5" + md5hex(md5hex(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user, 'utf8')
    .digest('hex');
  return 'md5' + createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
}

/** Forwards a cancel to the server workload with the real key; the server answers nothing. */
export async function cancel(
  conn: ProxyConnection,
  key: BackendKey,
  signal: AbortSignal,
): Promise<void> {
  const socket = await open(conn, signal);
  await new Promise<void>((resolve) => {
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    signal.addEventListener('abort', () => socket.destroy(), { once: true });
    socket.end(cancelRequest(key.pid, key.secret));
    socket.resume();
  });
}

function upstreamError(conn: ProxyConnection, m: Frame): PostgresError {
  const f = errorFields(m.body);
  return new PostgresError(
    f.get('C') ?? SQLSTATE.internal,
    `${where(conn)}: ${f.get('M') ?? 'error'}`,
    m.raw,
  );
}

function asPostgresError(conn: ProxyConnection, e: unknown): unknown {
  if (e instanceof ScramError) {
    return new PostgresError(SQLSTATE.rejectedEstablishment, `${where(conn)}: SCRAM: ${e.message}`);
  }
  if (e instanceof FrameError) {
    return new PostgresError(
      e.reason === 'too-large' ? SQLSTATE.protocolViolation : SQLSTATE.unableToConnect,
      `${where(conn)} during startup: ${e.message}`,
    );
  }
  return e;
}
