// Minimal DER encoder for the certificate hot path. Every function returns the complete TLV so
// callers compose structures by concatenation; no generic ASN.1 schema machinery (that is what
// makes @peculiar/x509 too slow to mint SVIDs at signing speed).

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV with a single-byte tag (all tags used here are low-number tags). */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of content) len += c.length;
  const head = lengthBytes(len);
  const out = Buffer.allocUnsafe(1 + head.length + len);
  out[0] = tag;
  for (let i = 0; i < head.length; i++) out[1 + i] = head[i] as number;
  let off = 1 + head.length;
  for (const c of content) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Uint8Array[]): Buffer => tlv(TAG.SET, ...parts);

/** Context-specific tag [n]; constructed for EXPLICIT tagging or IMPLICIT constructed types. */
export function ctx(n: number, constructed: boolean, ...parts: Uint8Array[]): Buffer {
  return tlv(0x80 | (constructed ? 0x20 : 0) | n, ...parts);
}

/** INTEGER from unsigned big-endian bytes: minimal encoding, 0x00 prefix when the top bit is set. */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  if (trimmed.length === 0) return tlv(TAG.INTEGER, Uint8Array.of(0));
  return (trimmed[0] as number) & 0x80
    ? tlv(TAG.INTEGER, Uint8Array.of(0), trimmed)
    : tlv(TAG.INTEGER, trimmed);
}

export function smallInteger(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`bad integer ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Uint8Array.from(bytes.length ? bytes : [0]));
}

// OIDs are a small fixed set; memoised so the hot path never re-encodes one.
const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  let cached = oidCache.get(dotted);
  if (!cached) {
    cached = encodeOid(dotted);
    oidCache.set(dotted, cached);
  }
  return cached;
}

function encodeOid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const [a, b, ...rest] = parts;
  if (a === undefined || b === undefined) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128))
      chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}

export const bool = (v: boolean): Buffer => tlv(TAG.BOOLEAN, Uint8Array.of(v ? 0xff : 0));
export const nul = (): Buffer => tlv(TAG.NULL);
export const octetString = (b: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, b);
export const bitString = (b: Uint8Array, unused = 0): Buffer =>
  tlv(TAG.BIT_STRING, Uint8Array.of(unused), b);
export const utf8 = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const printable = (s: string): Buffer => tlv(TAG.PRINTABLE_STRING, Buffer.from(s, 'latin1'));
export const ia5 = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'latin1'));

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
export function time(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const y = d.getUTCFullYear();
  if (!Number.isFinite(y) || y < 1950 || y > 9999) throw new RangeError(`time out of range: ${ms}`);
  const rest =
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    'Z';
  return y < 2050
    ? tlv(TAG.UTC_TIME, Buffer.from(pad2(y % 100) + rest, 'latin1'))
    : tlv(TAG.GENERALIZED_TIME, Buffer.from(String(y) + rest, 'latin1'));
}
