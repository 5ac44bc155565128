// The MySQL client/server protocol packets the proxy reads and writes before relaying (MySQL
// source docs, "Client/Server Protocol": Packets, Connection Phase; MariaDB's extended
// capabilities ride unchanged in the reserved bytes). Pure; every read is bounds-checked and a
// malformed packet is a PacketError naming what was wrong.

/** Capability flags (CLIENT_*) the proxy looks at or sets. */
export const CAP = {
  CONNECT_WITH_DB: 0x8,
  COMPRESS: 0x20,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  SECURE_CONNECTION: 0x8000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC: 0x200000,
  ZSTD: 0x4000000,
} as const;

/** Longest packet the proxy reads while authenticating (greetings, responses, keys, OK/ERR). */
export const MAX_HANDSHAKE_PACKET = 64 * 1024;

export class PacketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PacketError';
  }
}

export interface Packet {
  readonly seq: number;
  readonly payload: Buffer;
}

/**
 * The first packet in `buf` and the bytes after it; undefined while incomplete; 'too-large' as
 * soon as the header announces more than `max` bytes (without waiting for them).
 */
export function splitPacket(
  buf: Buffer,
  max = MAX_HANDSHAKE_PACKET,
): { value: Packet | 'too-large'; rest: Buffer } | undefined {
  if (buf.length < 4) return undefined;
  const len = buf.readUIntLE(0, 3);
  if (len > max) return { value: 'too-large', rest: Buffer.alloc(0) };
  if (buf.length < 4 + len) return undefined;
  return {
    value: { seq: buf[3] ?? 0, payload: buf.subarray(4, 4 + len) },
    rest: buf.subarray(4 + len),
  };
}

export function packet(seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head[3] = seq & 0xff;
  return Buffer.concat([head, payload]);
}

/** A reader over one payload: each read checks the bounds. */
export class Reader {
  #buf: Buffer;
  #pos = 0;
  readonly #what: string;
  constructor(buf: Buffer, what: string) {
    this.#buf = buf;
    this.#what = what;
  }
  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }
  bytes(n: number): Buffer {
    if (n < 0 || this.#pos + n > this.#buf.length)
      throw new PacketError(`${this.#what}: truncated`);
    const b = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }
  u8(): number {
    return this.bytes(1)[0] ?? 0;
  }
  u16(): number {
    return this.bytes(2).readUInt16LE(0);
  }
  u32(): number {
    return this.bytes(4).readUInt32LE(0);
  }
  /** A NUL-terminated string; at the end of the packet the NUL may be missing. */
  nulString(): Buffer {
    const end = this.#buf.indexOf(0, this.#pos);
    const stop = end < 0 ? this.#buf.length : end;
    const b = this.#buf.subarray(this.#pos, stop);
    this.#pos = end < 0 ? stop : stop + 1;
    return b;
  }
  lenencInt(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.bytes(3).readUIntLE(0, 3);
    throw new PacketError(`${this.#what}: unsupported length`);
  }
  rest(): Buffer {
    return this.bytes(this.#buf.length - this.#pos);
  }
}

export function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n <= 0xffff) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  const b = Buffer.alloc(4);
  b[0] = 0xfd;
  b.writeUIntLE(n, 1, 3);
  return b;
}

const nul = (b: Buffer | string): Buffer => Buffer.concat([Buffer.from(b), Buffer.alloc(1)]);

/** HandshakeV10 (the server's greeting). */
export interface Greeting {
  readonly serverVersion: Buffer;
  readonly connectionId: number;
  /** The challenge (20 bytes from MySQL and MariaDB). */
  readonly scramble: Buffer;
  readonly capabilities: number;
  readonly charset: number;
  readonly status: number;
  /** The 10 reserved bytes (MariaDB's extended capabilities in the last 4), kept as sent. */
  readonly reserved: Buffer;
  readonly plugin: string;
}

export function parseGreeting(payload: Buffer): Greeting {
  const r = new Reader(payload, 'server greeting');
  const version = r.u8();
  if (version === 0xff) throw new PacketError('server greeting: the server answered an error');
  if (version !== 10) throw new PacketError(`server greeting: protocol version ${version}`);
  const serverVersion = r.nulString();
  const connectionId = r.u32();
  const part1 = r.bytes(8);
  r.u8();
  let capabilities = r.u16();
  const charset = r.u8();
  const status = r.u16();
  capabilities |= r.u16() << 16;
  capabilities >>>= 0;
  const dataLength = r.u8();
  const reserved = Buffer.from(r.bytes(10));
  if (!(capabilities & CAP.PROTOCOL_41) || !(capabilities & CAP.SECURE_CONNECTION)) {
    throw new PacketError('server greeting: the server does not speak protocol 4.1');
  }
  const part2 = r.bytes(Math.max(13, dataLength - 8));
  const plugin = capabilities & CAP.PLUGIN_AUTH ? r.nulString().toString('latin1') : '';
  const all = Buffer.concat([part1, part2]);
  const scramble = Buffer.from(all.subarray(0, all.indexOf(0) < 0 ? 20 : all.indexOf(0)));
  return { serverVersion, connectionId, scramble, capabilities, charset, status, reserved, plugin };
}

export function buildGreeting(g: Greeting): Buffer {
  const caps = Buffer.alloc(4);
  caps.writeUInt32LE(g.capabilities >>> 0);
  const status = Buffer.alloc(2);
  status.writeUInt16LE(g.status);
  const id = Buffer.alloc(4);
  id.writeUInt32LE(g.connectionId >>> 0);
  return Buffer.concat([
    Buffer.from([10]),
    nul(g.serverVersion),
    id,
    g.scramble.subarray(0, 8),
    Buffer.alloc(1),
    caps.subarray(0, 2),
    Buffer.from([g.charset]),
    status,
    caps.subarray(2, 4),
    Buffer.from([g.scramble.length + 1]),
    g.reserved,
    nul(g.scramble.subarray(8)),
    nul(g.plugin),
  ]);
}

/** HandshakeResponse41 (the client's answer to the greeting). */
export interface HandshakeResponse {
  readonly capabilities: number;
  readonly maxPacket: number;
  readonly charset: number;
  /** The 23 reserved bytes (MariaDB's extended capabilities in the last 4), kept as sent. */
  readonly reserved: Buffer;
  readonly username: Buffer;
  readonly authResponse: Buffer;
  readonly database: Buffer | undefined;
  readonly plugin: string;
  /** The connection attributes, with their length prefix, as sent (empty when none). */
  readonly attributes: Buffer;
}

/** Whether a client's first packet is an SSLRequest (the 32-byte prefix alone, SSL set). */
export function isSslRequest(payload: Buffer): boolean {
  return payload.length === 32 && (payload.readUInt32LE(0) & CAP.SSL) !== 0;
}

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new Reader(payload, 'handshake response');
  const capabilities = r.u32();
  if (!(capabilities & CAP.PROTOCOL_41)) {
    throw new PacketError('handshake response: the client does not speak protocol 4.1');
  }
  const maxPacket = r.u32();
  const charset = r.u8();
  const reserved = Buffer.from(r.bytes(23));
  const username = Buffer.from(r.nulString());
  let authResponse: Buffer;
  if (capabilities & CAP.PLUGIN_AUTH_LENENC) authResponse = r.bytes(r.lenencInt());
  else if (capabilities & CAP.SECURE_CONNECTION) authResponse = r.bytes(r.u8());
  else authResponse = r.nulString();
  const database =
    capabilities & CAP.CONNECT_WITH_DB && !r.done ? Buffer.from(r.nulString()) : undefined;
  const plugin = capabilities & CAP.PLUGIN_AUTH && !r.done ? r.nulString().toString('latin1') : '';
  let attributes = Buffer.alloc(0);
  if (capabilities & CAP.CONNECT_ATTRS && !r.done) {
    const start = r.rest();
    const a = new Reader(start, 'connection attributes');
    const end = a.lenencInt() + start.length - a.rest().length;
    if (end > start.length) throw new PacketError('connection attributes: truncated');
    attributes = Buffer.from(start.subarray(0, end));
  }
  return {
    capabilities,
    maxPacket,
    charset,
    reserved,
    username,
    authResponse: Buffer.from(authResponse),
    database,
    plugin,
    attributes,
  };
}

/** The 32-byte prefix shared by SSLRequest and HandshakeResponse41. */
function responsePrefix(h: HandshakeResponse): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt32LE(h.capabilities >>> 0, 0);
  b.writeUInt32LE(h.maxPacket >>> 0, 4);
  b[8] = h.charset;
  return Buffer.concat([b, h.reserved]);
}

export function buildSslRequest(h: HandshakeResponse): Buffer {
  return responsePrefix(h);
}

export function buildHandshakeResponse(h: HandshakeResponse): Buffer {
  const auth =
    h.capabilities & CAP.PLUGIN_AUTH_LENENC
      ? Buffer.concat([lenencInt(h.authResponse.length), h.authResponse])
      : Buffer.concat([Buffer.from([h.authResponse.length]), h.authResponse]);
  return Buffer.concat([
    responsePrefix(h),
    nul(h.username),
    auth,
    h.capabilities & CAP.CONNECT_WITH_DB && h.database ? nul(h.database) : Buffer.alloc(0),
    h.capabilities & CAP.PLUGIN_AUTH ? nul(h.plugin) : Buffer.alloc(0),
    h.capabilities & CAP.CONNECT_ATTRS ? h.attributes : Buffer.alloc(0),
  ]);
}

/** ERR_Packet (protocol 4.1: with SQLSTATE). The message must not carry a credential. */
export function errPacket(code: number, sqlState: string, message: string): Buffer {
  const head = Buffer.alloc(3);
  head[0] = 0xff;
  head.writeUInt16LE(code, 1);
  return Buffer.concat([head, Buffer.from(`#${sqlState}`), Buffer.from(message)]);
}

/** The error code of an ERR_Packet payload. */
export function errCode(payload: Buffer): number {
  return payload.length >= 3 ? payload.readUInt16LE(1) : 0;
}
