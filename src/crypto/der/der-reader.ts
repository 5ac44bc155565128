// Minimal strict DER reader: definite minimal lengths, low-number tags only, every read bounds
// checked. It never throws anything but DerError (an InvalidArgumentError), so bad bytes from the
// network always surface as a clear invalid_argument and never as a crash.
import { InvalidArgumentError } from '../../core/errors.ts';
import { TAG } from './der-writer.ts';

export class DerError extends InvalidArgumentError {
  constructor(message: string) {
    super(`malformed DER: ${message}`);
    this.name = 'DerError';
  }
}

export interface DerNode {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

/** Reads the TLV at `offset`, which must end at or before `limit`. */
export function readNode(buf: Uint8Array, offset: number, limit = buf.length): DerNode {
  if (offset + 2 > limit) throw new DerError('truncated header');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-number tags are not supported');
  let len = buf[offset + 1] as number;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('length too large');
    if (p + n > limit) throw new DerError('truncated length');
    if (buf[p] === 0) throw new DerError('non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    if (len < 0x80) throw new DerError('non-minimal length');
    p += n;
  }
  if (p + len > limit) throw new DerError('truncated content');
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** Parses a whole buffer that must be exactly one TLV. */
export function readRoot(buf: Uint8Array): DerNode {
  const n = readNode(buf, 0);
  if (n.end !== buf.length) throw new DerError('trailing bytes after the outer element');
  return n;
}

export function expectTag(node: DerNode, tag: number, what: string): DerNode {
  if (node.tag !== tag) {
    throw new DerError(
      `${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`,
    );
  }
  return node;
}

export function children(buf: Uint8Array, node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let p = node.contentStart; p < node.end;) {
    const c = readNode(buf, p, node.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function content(buf: Uint8Array, node: DerNode): Uint8Array {
  return buf.subarray(node.contentStart, node.end);
}

export function raw(buf: Uint8Array, node: DerNode): Uint8Array {
  return buf.subarray(node.start, node.end);
}

export function readOid(buf: Uint8Array, node: DerNode): string {
  expectTag(node, TAG.OID, 'object identifier');
  const arcs: number[] = [];
  let v = 0;
  if (node.end === node.contentStart) throw new DerError('empty object identifier');
  for (let p = node.contentStart; p < node.end; p++) {
    const b = buf[p] as number;
    if (v === 0 && b === 0x80) throw new DerError('non-minimal object identifier arc');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 256) throw new DerError('object identifier arc too large');
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0;
    } else if (p === node.end - 1) throw new DerError('truncated object identifier');
  }
  const first = arcs[0] as number;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

export function readBitString(
  buf: Uint8Array,
  node: DerNode,
): { unused: number; bytes: Uint8Array } {
  expectTag(node, TAG.BIT_STRING, 'bit string');
  if (node.end === node.contentStart) throw new DerError('empty bit string');
  const unused = buf[node.contentStart] as number;
  if (unused > 7 || (unused > 0 && node.end - node.contentStart === 1)) {
    throw new DerError('bad bit string padding');
  }
  return { unused, bytes: buf.subarray(node.contentStart + 1, node.end) };
}

export function readBoolean(buf: Uint8Array, node: DerNode): boolean {
  expectTag(node, TAG.BOOLEAN, 'boolean');
  if (node.end - node.contentStart !== 1) throw new DerError('bad boolean length');
  const b = buf[node.contentStart];
  if (b !== 0 && b !== 0xff) throw new DerError('non-DER boolean');
  return b === 0xff;
}

/** A non-negative INTEGER that fits a JS number (versions, path lengths). */
export function readSmallInteger(buf: Uint8Array, node: DerNode): number {
  expectTag(node, TAG.INTEGER, 'integer');
  const len = node.end - node.contentStart;
  if (len === 0 || len > 6) throw new DerError('integer length out of range');
  if ((buf[node.contentStart] as number) & 0x80) throw new DerError('negative integer');
  let v = 0;
  for (let p = node.contentStart; p < node.end; p++) v = v * 256 + (buf[p] as number);
  return v;
}

const TIME_RE = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** UTCTime / GeneralizedTime in the RFC 5280 profile (seconds, Zulu) → epoch ms. */
export function readTime(buf: Uint8Array, node: DerNode): number {
  const isUtc = node.tag === TAG.UTC_TIME;
  if (!isUtc && node.tag !== TAG.GENERALIZED_TIME) throw new DerError('expected a time');
  const text = Buffer.from(content(buf, node)).toString('latin1');
  const m = TIME_RE.exec(text);
  if (!m || (isUtc ? m[1]?.length !== 2 : m[1]?.length !== 4)) {
    throw new DerError(`bad time "${text.slice(0, 20)}"`);
  }
  let year = Number(m[1]);
  if (isUtc) year += year < 50 ? 2000 : 1900;
  const ms = Date.UTC(
    year,
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  );
  if (Number.isNaN(ms)) throw new DerError(`bad time "${text}"`);
  return ms;
}
