// The client's first packet, parsed and bounded (untrusted: any local process can send it).
// Pure; the caller answers SSLRequest/GSSENCRequest with 'N' (the client leg is loopback) and
// reads the next packet. Bad input throws PostgresError (answered, then the connection ends).
import { PostgresError } from './postgres-error.ts';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE, SQLSTATE } from './wire.ts';

/** PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_BYTES = 10_000;
const MAX_PARAMS = 64;
const MAX_NAME_BYTES = 63;

export type StartupPacket =
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' }
  | { readonly kind: 'cancel'; readonly pid: number; readonly secret: number }
  | {
      readonly kind: 'startup';
      readonly minor: number;
      /** Every parameter but `_pq_.*` protocol options, in the client's order. */
      readonly params: ReadonlyMap<string, string>;
      /** `_pq_.*` protocol options asked for; none is supported. */
      readonly protocolOptions: readonly string[];
    };

const malformed = (why: string) =>
  new PostgresError(SQLSTATE.protocolViolation, `invalid startup packet: ${why}`);

/** Checks the length word of a startup-phase packet, before the rest is read. */
export function startupLength(head: Buffer): number {
  const length = head.readInt32BE(0);
  if (length < 8 || length > MAX_STARTUP_BYTES) {
    throw malformed(`length ${length} outside 8..${MAX_STARTUP_BYTES}`);
  }
  return length;
}

/** Parses one whole packet (length word included). */
export function parseStartup(packet: Buffer): StartupPacket {
  const code = packet.readInt32BE(4);
  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    if (packet.length !== 8) throw malformed('an encryption request has no body');
    return { kind: code === SSL_REQUEST_CODE ? 'ssl' : 'gssenc' };
  }
  if (code === CANCEL_REQUEST_CODE) {
    if (packet.length !== 16) throw malformed('a cancel request is 16 bytes');
    return { kind: 'cancel', pid: packet.readInt32BE(8), secret: packet.readInt32BE(12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new PostgresError(
      SQLSTATE.notSupported,
      `unsupported frontend protocol ${major}.${minor}: the proxy speaks 3.0`,
    );
  }
  return { kind: 'startup', minor, ...parseParams(packet.subarray(8)) };
}

function parseParams(body: Buffer): {
  params: Map<string, string>;
  protocolOptions: string[];
} {
  const params = new Map<string, string>();
  const protocolOptions: string[] = [];
  let i = 0;
  const next = (): string => {
    const end = body.indexOf(0, i);
    if (end < 0) throw malformed('a parameter is not NUL-terminated');
    const bytes = body.subarray(i, end);
    const s = bytes.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(bytes)) throw malformed('a parameter is not UTF-8');
    i = end + 1;
    return s;
  };
  for (;;) {
    if (i >= body.length) throw malformed('missing the terminating NUL');
    if (body[i] === 0) {
      if (i !== body.length - 1) throw malformed('bytes after the terminating NUL');
      break;
    }
    const name = next();
    const value = next();
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
      throw malformed(`parameter name longer than ${MAX_NAME_BYTES} bytes`);
    }
    if (name.startsWith('_pq_.')) {
      protocolOptions.push(name);
      continue;
    }
    if (params.has(name)) throw malformed(`parameter "${name}" given twice`);
    params.set(name, value);
    if (params.size + protocolOptions.length > MAX_PARAMS) {
      throw malformed(`more than ${MAX_PARAMS} parameters`);
    }
  }
  return { params, protocolOptions };
}
