// The proxy as a MySQL client of the server workload: read its greeting, upgrade to TLS in-band
// when the server workload has `tls`, and authenticate with the injected credential —
// mysql_native_password, or caching_sha2_password (fast path; full authentication sending the
// password over TLS, or without TLS encrypted with RSA-OAEP to the key the server sends on
// request) — following auth switch requests. Bounded: every packet, the number of rounds, time.
import type { Socket } from 'node:net';
import { UnavailableError } from '../../../core/errors.ts';
import type { ProxyConnection } from '../proxy-connection.ts';
import { readUntil, ReadError, startTls, type Stream } from '../handshake-io.ts';
import {
  buildHandshakeResponse,
  buildSslRequest,
  CAP,
  errCode,
  packet,
  parseGreeting,
  splitPacket,
  type Greeting,
  type HandshakeResponse,
  type Packet,
} from './packets.ts';
import { cachingSha2Proof, nativePasswordProof, rsaEncryptedPassword } from './scramble.ts';

/** A refusal the client gets as an ERR packet; `message` never names the credential. */
export class MysqlRefusal extends Error {
  readonly code: number;
  readonly sqlState: string;
  /** For the log: safe detail (an upstream error code, a TLS failure). */
  readonly detail: string;
  constructor(code: number, sqlState: string, message: string, detail = '') {
    super(message);
    this.name = 'MysqlRefusal';
    this.code = code;
    this.sqlState = sqlState;
    this.detail = detail;
  }
}

/** 1043 ER_HANDSHAKE_ERROR: the server workload could not be reached or spoke badly. */
export const unreachable = (server: string, why: string): MysqlRefusal =>
  new MysqlRefusal(1043, '08S01', `tessera proxy: server workload "${server}" unreachable: ${why}`);

/** The server's identity the proxy logs in as ("" username = the client's own). */
export interface Login {
  readonly username: string;
  readonly password: string;
}

export interface Upstream {
  socket: Stream;
  pending: Buffer;
  readonly greeting: Greeting;
}

const MAX_AUTH_ROUNDS = 6;
const NATIVE = 'mysql_native_password';
const SHA2 = 'caching_sha2_password';

async function readPacket(up: Upstream, conn: ProxyConnection, timeoutMs: number): Promise<Packet> {
  let got;
  try {
    got = await readUntil(up.socket, up.pending, (b) => splitPacket(b), {
      maxBytes: Infinity,
      timeoutMs,
      signal: conn.signal,
      what: 'packet from the server',
    });
  } catch (e) {
    throw unreachable(conn.server.name, e instanceof ReadError ? e.message : 'read failed');
  }
  up.pending = got.rest;
  if (got.value === 'too-large') throw unreachable(conn.server.name, 'packet too large');
  return got.value;
}

/** Connects (plain TCP) and reads the server's greeting. */
export async function greetUpstream(conn: ProxyConnection, timeoutMs: number): Promise<Upstream> {
  let socket: Stream;
  try {
    socket = await conn.connectUpstream();
  } catch (e) {
    throw unreachable(
      conn.server.name,
      e instanceof UnavailableError ? e.message : 'connection failed',
    );
  }
  socket.on('error', () => socket.destroy());
  const up: Upstream = { socket, pending: Buffer.alloc(0), greeting: undefined as never };
  const p = await readPacket(up, conn, timeoutMs);
  try {
    return { ...up, greeting: parseGreeting(p.payload) };
  } catch (e) {
    socket.destroy();
    throw unreachable(conn.server.name, (e as Error).message);
  }
}

function proof(plugin: string, password: string, scramble: Buffer, server: string): Buffer {
  if (plugin === NATIVE) return nativePasswordProof(password, scramble);
  if (plugin === SHA2) return cachingSha2Proof(password, scramble);
  throw new MysqlRefusal(
    1251,
    '08004',
    `tessera proxy: server workload "${server}" asks for authentication plugin "${plugin.slice(0, 64)}"; the proxy speaks ${NATIVE} and ${SHA2}`,
  );
}

/**
 * Logs in to the greeted server as `login`, with the client's session settings (`client`:
 * capabilities, charset, database, attributes). Returns the server's OK packet payload; the
 * upstream socket may have been replaced by its TLS socket.
 */
export async function authenticateUpstream(
  up: Upstream,
  client: HandshakeResponse,
  login: Login,
  conn: ProxyConnection,
  timeoutMs: number,
): Promise<Buffer> {
  const server = conn.server.name;
  const g = up.greeting;
  const tls = conn.server.tls === true;
  if (tls && !(g.capabilities & CAP.SSL)) {
    throw unreachable(server, 'the server workload requires TLS and the server does not offer it');
  }
  const keep = client.capabilities & g.capabilities & ~(CAP.SSL | CAP.COMPRESS | CAP.ZSTD);
  const database = client.database !== undefined && client.database.length > 0;
  let capabilities =
    (keep & ~(CAP.CONNECT_WITH_DB | CAP.PLUGIN_AUTH_LENENC)) |
    CAP.PROTOCOL_41 |
    CAP.SECURE_CONNECTION |
    CAP.PLUGIN_AUTH |
    (g.capabilities & CAP.PLUGIN_AUTH_LENENC) |
    (database ? CAP.CONNECT_WITH_DB : 0);
  if (tls) capabilities |= CAP.SSL;
  let plugin = g.plugin === SHA2 ? SHA2 : NATIVE;
  let scramble = g.scramble;
  const response: HandshakeResponse = {
    ...client,
    capabilities: capabilities >>> 0,
    username: Buffer.from(login.username),
    authResponse: proof(plugin, login.password, scramble, server),
    plugin,
  };
  let seq = 1;
  if (tls) {
    if (up.pending.length > 0) throw unreachable(server, 'unexpected data before TLS');
    up.socket.write(packet(seq, buildSslRequest(response)));
    seq += 1;
    try {
      up.socket = await startTls(up.socket as Socket, conn.upstreamTlsOptions(), timeoutMs);
    } catch (e) {
      throw unreachable(server, (e as Error).message);
    }
    up.socket.on('error', () => up.socket.destroy());
  }
  up.socket.write(packet(seq, buildHandshakeResponse(response)));
  let awaitingKey = false;
  for (let round = 0; round < MAX_AUTH_ROUNDS; round += 1) {
    const p = await readPacket(up, conn, timeoutMs);
    const send = (payload: Buffer): void => {
      up.socket.write(packet(p.seq + 1, payload));
    };
    const kind = p.payload[0];
    if (kind === 0x00) return p.payload;
    if (kind === 0xff) {
      throw new MysqlRefusal(
        1045,
        '28000',
        `tessera proxy: server workload "${server}" refused the injected credential`,
        `server error ${errCode(p.payload)}`,
      );
    }
    if (kind === 0xfe) {
      // AuthSwitchRequest: plugin name NUL, then its challenge (NUL-terminated by MySQL).
      const body = p.payload.subarray(1);
      const end = body.indexOf(0);
      if (end < 0) throw unreachable(server, 'an auth switch without a plugin name');
      plugin = body.subarray(0, end).toString('latin1');
      const data = body.subarray(end + 1);
      scramble = Buffer.from(data.at(-1) === 0 ? data.subarray(0, -1) : data);
      awaitingKey = false;
      send(proof(plugin, login.password, scramble, server));
      continue;
    }
    if (kind === 0x01 && plugin === SHA2) {
      const data = p.payload.subarray(1);
      if (awaitingKey) {
        send(rsaEncryptedPassword(login.password, scramble, data.toString('latin1')));
        awaitingKey = false;
      } else if (data.length === 1 && data[0] === 0x03) {
        // fast authentication succeeded: the OK follows
      } else if (data.length === 1 && data[0] === 0x04) {
        // full authentication: over TLS the password itself, else RSA to the server's key
        if (tls) send(Buffer.concat([Buffer.from(login.password), Buffer.alloc(1)]));
        else {
          send(Buffer.from([0x02]));
          awaitingKey = true;
        }
      } else throw unreachable(server, 'unexpected caching_sha2_password data');
      continue;
    }
    throw unreachable(
      server,
      `unexpected packet 0x${(kind ?? 0).toString(16)} while authenticating`,
    );
  }
  throw unreachable(server, `authentication not done after ${MAX_AUTH_ROUNDS} rounds`);
}
