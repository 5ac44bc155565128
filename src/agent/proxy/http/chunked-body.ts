// The chunked transfer coding (RFC 9112 §7.1) as both HTTP/1.1 readers decode it: chunk-size
// lines, chunk data handed on as views of the received buffer, the CRLF after each chunk, and the
// trailer section (dropped). Every line is bounded. Two strictnesses, one decoder:
//   - strict, for requests from clients (client-reader.ts): extensions must follow the grammar,
//     a bare CR or LF is refused as soon as it arrives, every trailer line must be a field line —
//     a request the proxy and the server could frame differently is never forwarded;
//   - lenient, for responses from upstreams (response-reader.ts): anything after `;` in a
//     chunk-size line and the trailer lines are skipped unread, as user agents do.
// Pure: the reader holds back what is unfinished and feeds it again with the next bytes.

export interface ChunkedRules {
  readonly strict: boolean;
  /** The error for a malformed or oversized body (`what` names the fault). */
  readonly fail: (what: string) => Error;
}

export const MAX_CHUNK_LINE_BYTES = 1024;
export const MAX_TRAILER_BYTES = 16 * 1024;
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED =
  '"(?:[\\t\\x20\\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t\\x20-\\x7e\\x80-\\xff])*"';
/** chunk-size [ chunk-ext ]: hex digits, then `;name[=value]` extensions. */
const STRICT_CHUNK_LINE = new RegExp(
  `^([0-9a-fA-F]{1,13})((?:[ \\t]*;[ \\t]*${TOKEN}(?:[ \\t]*=[ \\t]*(?:${TOKEN}|${QUOTED}))?)*)$`,
);
const LENIENT_CHUNK_LINE = /^([0-9a-fA-F]{1,13})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
const TRAILER_LINE = new RegExp(`^${TOKEN}:[\\t\\x20-\\x7e\\x80-\\xff]*$`);
const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

type Step = 'size' | 'data' | 'crlf' | 'trailers' | 'done';

export class ChunkedBody {
  readonly #rules: ChunkedRules;
  #step: Step = 'size';
  /** Bytes of the current chunk still due. */
  #remaining = 0;

  constructor(rules: ChunkedRules) {
    this.#rules = rules;
  }

  /** Whether the body has ended (last chunk and trailers read). */
  get done(): boolean {
    return this.#step === 'done';
  }

  /**
   * Decodes `buf` from `at`, handing chunk data to `data`. Returns where it stopped: the end of
   * the body once done; else buf.length, or the start of an unfinished line, which the caller
   * holds back and feeds again, followed by the next bytes.
   */
  read(buf: Buffer, at: number, data: (piece: Buffer) => void): number {
    let pos = at;
    while (pos < buf.length && this.#step !== 'done') {
      let next: number;
      if (this.#step === 'data') {
        const n = Math.min(this.#remaining, buf.length - pos);
        data(pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n));
        this.#remaining -= n;
        if (this.#remaining === 0) this.#step = 'crlf';
        next = pos + n;
      } else if (this.#step === 'size') next = this.#size(buf, pos);
      else if (this.#step === 'crlf') next = this.#crlf(buf, pos);
      else next = this.#trailers(buf, pos);
      if (next < 0) return pos; // unfinished: held back
      pos = next;
    }
    return pos;
  }

  #size(buf: Buffer, at: number): number {
    const end = buf.indexOf(CRLF, at);
    if (end < 0 || end - at > MAX_CHUNK_LINE_BYTES) {
      if (buf.length - at > MAX_CHUNK_LINE_BYTES) {
        throw this.#rules.fail(`chunk-size line longer than ${MAX_CHUNK_LINE_BYTES} bytes`);
      }
      if (this.#rules.strict && hasBareLineBreak(buf, at)) {
        throw this.#rules.fail('a bare CR or LF in a chunk-size line');
      }
      return -1;
    }
    const line = this.#rules.strict ? STRICT_CHUNK_LINE : LENIENT_CHUNK_LINE;
    const m = line.exec(buf.toString('latin1', at, end));
    if (!m) throw this.#rules.fail('chunk-size line');
    const size = parseInt(m[1]!, 16);
    if (size === 0) this.#step = 'trailers';
    else {
      this.#step = 'data';
      this.#remaining = size;
    }
    return end + 2;
  }

  #crlf(buf: Buffer, at: number): number {
    if (buf[at] !== 0x0d || (buf.length - at >= 2 && buf[at + 1] !== 0x0a)) {
      throw this.#rules.fail('chunk data not followed by CRLF');
    }
    if (buf.length - at < 2) return -1;
    this.#step = 'size';
    return at + 2;
  }

  /** Trailer fields (checked when strict, dropped) and the empty line ending the body. */
  #trailers(buf: Buffer, at: number): number {
    if (buf.length - at >= 2 && buf[at] === 0x0d && buf[at + 1] === 0x0a) {
      this.#step = 'done';
      return at + 2;
    }
    const end = buf.indexOf(CRLFCRLF, at);
    if (end >= 0 && end - at <= MAX_TRAILER_BYTES) {
      if (this.#rules.strict) checkTrailerLines(buf.toString('latin1', at, end), this.#rules);
      this.#step = 'done';
      return end + 4;
    }
    if (buf.length - at > MAX_TRAILER_BYTES) {
      throw this.#rules.fail(`trailers larger than ${MAX_TRAILER_BYTES} bytes`);
    }
    if (this.#rules.strict) {
      if (buf[at] === 0x0d && buf.length - at >= 2)
        throw this.#rules.fail('a bare CR in the trailers');
      if (hasBareLineBreak(buf, at)) throw this.#rules.fail('a bare CR or LF in the trailers');
    }
    return -1;
  }
}

function checkTrailerLines(section: string, rules: ChunkedRules): void {
  const lines = section.split('\r\n');
  for (let i = 0; i < lines.length; i++) {
    if (TRAILER_LINE.test(lines[i]!)) continue;
    throw rules.fail(
      /[\r\n]/.test(lines[i]!)
        ? 'a bare CR or LF in the trailers'
        : `trailer line ${i + 1}: not a token name followed by ":"`,
    );
  }
}

/**
 * Whether buf[from..] has an LF not after a CR, or a CR not before an LF (a CR as the very last
 * byte may still be followed by one).
 */
export function hasBareLineBreak(buf: Buffer, from: number): boolean {
  for (let i = buf.indexOf(0x0a, from); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (i === 0 || buf[i - 1] !== 0x0d) return true;
  }
  for (let i = buf.indexOf(0x0d, from); i >= 0; i = buf.indexOf(0x0d, i + 1)) {
    if (i < buf.length - 1 && buf[i + 1] !== 0x0a) return true;
  }
  return false;
}
