// The injected credential must not reach the client that never had it: a server that echoes the
// request (a debugging endpoint, an error page quoting the Authorization header, a redirect
// carrying the query) would hand it over. Every form of the credential (presenters.ts `secrets`)
// is masked in the response headers and streamed body with `*` of the same byte length, so
// Content-Length and the framing stay true and nothing is buffered beyond one secret's length.
//
// Bodies are scanned as bytes: a credential split across chunks is caught by holding back the
// last (longest secret − 1) bytes of each chunk. Encoded bodies (gzip, br, …) cannot be scanned,
// so a request with an injected credential asks the server for `Accept-Encoding: identity`, and
// an encoded answer to it is refused (the handler's 502) rather than passed unscanned.
import { Transform, type TransformCallback } from 'node:stream';

export class Scrubber {
  readonly #secrets: readonly Buffer[];
  readonly #strings: readonly string[];
  readonly #holdback: number;

  constructor(secrets: readonly string[]) {
    // Longest first: a secret containing another is masked whole.
    this.#strings = [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
    this.#secrets = this.#strings.map((s) => Buffer.from(s, 'utf8'));
    this.#holdback = Math.max(0, ...this.#secrets.map((s) => s.length - 1));
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

  /**
   * A Transform masking secrets in a byte stream, also across chunk boundaries. Matches are
   * searched in the raw bytes (a held-back tail stays unmasked, so a longer secret sharing a
   * shorter one's start is still found whole); a mask reaching past the emitted part is carried.
   */
  body(): Transform {
    const secrets = this.#secrets;
    const holdback = this.#holdback;
    let tail = Buffer.alloc(0);
    let carried = 0;
    const emit = (buf: Buffer, cut: number): Buffer => {
      const out = Buffer.from(buf.subarray(0, cut));
      out.fill(0x2a, 0, Math.min(carried, cut));
      let reach = carried;
      for (const s of secrets) {
        for (let i = buf.indexOf(s); i >= 0 && i < cut; i = buf.indexOf(s, i + 1)) {
          out.fill(0x2a, i, Math.min(cut, i + s.length));
          reach = Math.max(reach, i + s.length);
        }
      }
      carried = Math.max(0, reach - cut);
      return out;
    };
    return new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
        const buf = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
        const cut = Math.max(0, buf.length - holdback);
        const out = emit(buf, cut);
        tail = Buffer.from(buf.subarray(cut));
        done(null, out.length > 0 ? out : undefined);
      },
      flush(done: TransformCallback) {
        const out = emit(tail, tail.length);
        done(null, out.length > 0 ? out : undefined);
      },
    });
  }
}
