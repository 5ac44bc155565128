// PostgreSQL wire protocol 3.0, the few messages the proxy writes itself
// (https://www.postgresql.org/docs/current/protocol-message-formats.html). Pure: buffers in,
// buffers out. After authentication the proxy relays bytes untouched, so only the startup and
// authentication exchange is built or read here.
//
// Written by hand rather than with pg-protocol's serializer: its startup message always appends
// client_encoding=UTF8 (overriding the client's own) and its C strings do not refuse NUL bytes.

/** Startup-phase request codes (the int32 after the length). */
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
export const PROTOCOL_3_0 = 3 << 16;

/** Authentication request codes ('R' messages). */
export const AUTH_OK = 0;
export const AUTH_CLEARTEXT = 3;
export const AUTH_MD5 = 5;
export const AUTH_SASL = 10;
export const AUTH_SASL_CONTINUE = 11;
export const AUTH_SASL_FINAL = 12;

/** The SQLSTATEs the proxy answers with itself. */
export const SQLSTATE = Object.freeze({
  /** invalid_authorization_specification: the access decision denied. */
  denied: '28000',
  /** connection_failure: Tessera could not supply a credential (server away). */
  connectionFailure: '08006',
  /** sqlclient_unable_to_establish_sqlconnection: the upstream could not be reached. */
  unableToConnect: '08001',
  /** sqlserver_rejected_establishment_of_sqlconnection: the upstream's terms are refused. */
  rejectedEstablishment: '08004',
  /** protocol_violation. */
  protocolViolation: '08P01',
  /** feature_not_supported. */
  notSupported: '0A000',
  /** internal_error. */
  internal: 'XX000',
});

function cstring(s: string): Buffer {
  if (s.includes('\0')) throw new TypeError('a PostgreSQL string cannot contain NUL');
  return Buffer.from(s + '\0', 'utf8');
}

/** A typed message: type byte, int32 length (counting itself), body. */
export function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

/** An untyped startup-phase packet: int32 length, int32 code, body. */
function startupPacket(code: number, body: Buffer): Buffer {
  return Buffer.concat([int32(body.length + 8), int32(code), body]);
}

// ---- frontend (proxy → upstream) ----

export function startupMessage(params: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of params) parts.push(cstring(k), cstring(v));
  parts.push(Buffer.from([0]));
  return startupPacket(PROTOCOL_3_0, Buffer.concat(parts));
}

export const sslRequest = (): Buffer => startupPacket(SSL_REQUEST_CODE, Buffer.alloc(0));

export function cancelRequest(pid: number, secret: number): Buffer {
  return startupPacket(CANCEL_REQUEST_CODE, Buffer.concat([int32(pid), int32(secret)]));
}

/** PasswordMessage (cleartext or md5 hex). */
export const passwordMessage = (password: string): Buffer => message('p', cstring(password));

export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  return message('p', Buffer.concat([cstring(mechanism), int32(data.length), data]));
}

export const saslResponse = (data: Buffer): Buffer => message('p', data);

// ---- backend (proxy → client) ----

export const authenticationOk = (): Buffer => message('R', int32(AUTH_OK));

export function backendKeyData(pid: number, secret: number): Buffer {
  return message('K', Buffer.concat([int32(pid), int32(secret)]));
}

/** NegotiateProtocolVersion: the newest minor version spoken and the options not recognised. */
export function negotiateProtocolVersion(minor: number, unrecognised: readonly string[]): Buffer {
  return message(
    'v',
    Buffer.concat([int32(minor), int32(unrecognised.length), ...unrecognised.map(cstring)]),
  );
}

/** A FATAL ErrorResponse. The message must never hold a credential. */
export function errorResponse(sqlstate: string, text: string): Buffer {
  const field = (code: string, value: string) =>
    Buffer.concat([Buffer.from(code, 'latin1'), cstring(value.replaceAll('\0', ''))]);
  return message(
    'E',
    Buffer.concat([
      field('S', 'FATAL'),
      field('V', 'FATAL'),
      field('C', sqlstate),
      field('M', text),
      Buffer.from([0]),
    ]),
  );
}

/** The fields of an ErrorResponse/NoticeResponse body (code letter → value), for logs. */
export function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    fields.set(code, body.toString('utf8', i + 1, end));
    i = end + 1;
  }
  return fields;
}

/** Splits a body of consecutive C strings ("a\0b\0\0"), as in the SASL mechanism list. */
export function cstrings(body: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i);
    if (end < 0) break;
    out.push(body.toString('utf8', i, end));
    i = end + 1;
  }
  return out;
}
