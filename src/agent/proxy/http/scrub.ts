// The injected credential must not reach the client that never had it: a server that echoes the
// request (a debugging endpoint, an error page quoting the Authorization header, a redirect
// carrying the query) would hand it over. Every form of the credential (presenters.ts `secrets`)
// is masked in the response headers and streamed body with `*` of the same byte length, so
// Content-Length and the framing stay true and nothing is buffered beyond one secret's length.
//
// Bodies are scanned as bytes: a credential split across chunks is caught by holding back the end
// of a chunk that could begin one (at most longest secret − 1 bytes). Encoded bodies (gzip, br,
// …) cannot be scanned, so a request with an injected credential asks the server for
// `Accept-Encoding: identity`, and an encoded answer to it is refused (the handler's 502) rather
// than passed unscanned.
const EMPTY = Buffer.alloc(0);

export class Scrubber {
  readonly #secrets: readonly Buffer[];
  readonly #strings: readonly string[];

  constructor(secrets: readonly string[]) {
    // Longest first: a secret containing another is masked whole.
    const forms = [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
    this.#secrets = forms.map((s) => Buffer.from(s, 'utf8'));
    // Header values from an HTTP/1.1 upstream are latin1 text: a non-ASCII secret shows there as
    // the latin1 reading of its UTF-8 bytes.
    const latin1 = this.#secrets.map((b) => b.toString('latin1'));
    this.#strings = [...new Set([...forms, ...latin1])].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.#secrets.length === 0;
  }

  /** A header value with every secret masked. */
  text(value: string): string {
    let v = value;
    for (const s of this.#strings) if (v.includes(s)) v = v.split(s).join('*'.repeat(s.length));
    return v;
  }

  /** A fresh scanner for one response body. */
  body(): BodyScrub {
    return new BodyScrub(this.#secrets);
  }
}

/**
 * Masks secrets in one byte stream, also across chunk boundaries. Only a chunk's end that could
 * begin a secret (it equals the secret's first bytes) is held back for the next chunk; a chunk
 * with no secret and no such end passes through as the same Buffer, uncopied. Matches are
 * searched in the raw bytes (a held-back tail stays unmasked, so a longer secret sharing a shorter
 * one's start is still found whole); a mask reaching past the emitted part is carried.
 */
export class BodyScrub {
  readonly #secrets: readonly Buffer[];
  #tail: Buffer | null = null;
  #carried = 0;

  constructor(secrets: readonly Buffer[]) {
    this.#secrets = secrets;
  }

  /** The part of the stream so far that is safe to pass on (possibly empty). */
  push(chunk: Buffer): Buffer {
    const buf = this.#tail === null ? chunk : Buffer.concat([this.#tail, chunk]);
    const cut = this.#holdFrom(buf);
    this.#tail = cut < buf.length ? Buffer.from(buf.subarray(cut)) : null;
    return this.#emit(buf, cut);
  }

  /** The rest of the stream, at its end. */
  end(): Buffer {
    const tail = this.#tail;
    if (tail === null && this.#carried === 0) return EMPTY;
    this.#tail = null;
    return this.#emit(tail ?? EMPTY, tail?.length ?? 0);
  }

  /** The earliest position from which the end of `buf` is a proper prefix of a secret. */
  #holdFrom(buf: Buffer): number {
    const len = buf.length;
    let from = len;
    for (const s of this.#secrets) {
      const first = s[0]!;
      const start = Math.max(0, len - s.length + 1);
      for (let i = buf.indexOf(first, start); i >= 0 && i < from; i = buf.indexOf(first, i + 1)) {
        if (buf.compare(s, 0, len - i, i, len) === 0) {
          from = i;
          break;
        }
      }
    }
    return from;
  }

  /** buf[0, cut) with every secret found in buf (starting before cut) masked. */
  #emit(buf: Buffer, cut: number): Buffer {
    let out: Buffer | null = null;
    let reach = this.#carried;
    if (this.#carried > 0) {
      out = Buffer.from(buf.subarray(0, cut));
      out.fill(0x2a, 0, Math.min(this.#carried, cut));
    }
    for (const s of this.#secrets) {
      for (let i = buf.indexOf(s); i >= 0 && i < cut; i = buf.indexOf(s, i + 1)) {
        out ??= Buffer.from(buf.subarray(0, cut));
        out.fill(0x2a, i, Math.min(cut, i + s.length));
        reach = Math.max(reach, i + s.length);
      }
    }
    this.#carried = Math.max(0, reach - cut);
    return out ?? (cut === buf.length ? buf : buf.subarray(0, cut));
  }
}
