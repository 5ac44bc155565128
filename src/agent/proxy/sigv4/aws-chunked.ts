// Re-signing an aws-chunked body (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
//   <hex size>;chunk-signature=<64 hex>\r\n<size bytes>\r\n   ...   0;chunk-signature=<64 hex>\r\n\r\n
// Each chunk's signature chains from the previous one, the first from the request's (seed)
// signature, so every chunk is signed again with the brokered key from the new seed. A chunk's
// signature covers its data's hash and precedes the data, so one chunk at a time is held
// (bounded by maxChunkBytes). The size field is written back exactly as it came, so the body's
// length — and Content-Length — do not change. The client's chunk signatures are not checked
// (they are made with placeholder keys); the framing and the decoded length are.
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { chunkStringToSign, hmacHex, type SigV4Scope } from '../../../crypto/aws-sigv4/signing.ts';

export interface ChunkSigning {
  readonly key: Buffer;
  readonly amzDate: string;
  readonly scope: SigV4Scope;
  readonly seedSignature: string;
  /** x-amz-decoded-content-length: the data bytes the chunks must add up to. */
  readonly decodedLength: number;
  readonly maxChunkBytes: number;
}

const CHUNK_HEADER = /^([0-9a-fA-F]{1,8});chunk-signature=[0-9a-f]{64}$/;
/** "ffffffff;chunk-signature=" + 64 hex digits, with room to spare. */
const MAX_HEADER_LINE = 128;
const CRLF = Buffer.from('\r\n');

type State =
  | { readonly kind: 'header' }
  | { readonly kind: 'data'; readonly sizeText: string; readonly size: number }
  | { readonly kind: 'data-end'; readonly sizeText: string; readonly size: number }
  | { readonly kind: 'done' };

function malformed(what: string): InvalidArgumentError {
  return new InvalidArgumentError(`malformed aws-chunked body: ${what}`);
}

export class ChunkResigner extends Transform {
  readonly #s: ChunkSigning;
  #previous: string;
  #state: State = { kind: 'header' };
  /** Bytes received and not yet consumed by the state machine. */
  #pending: Buffer = Buffer.alloc(0);
  #data: Buffer[] = [];
  #dataBytes = 0;
  #decoded = 0;

  readonly #source: Readable;
  #started = false;

  /** Reads `source` once the body is first read, so no error precedes the caller's listener. */
  constructor(source: Readable, s: ChunkSigning) {
    super();
    this.#source = source;
    this.#s = s;
    this.#previous = s.seedSignature;
  }

  override _read(size: number): void {
    if (!this.#started) {
      this.#started = true;
      this.#source.on('error', (e) => this.destroy(e));
      this.#source.pipe(this);
    }
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
      this.#consume();
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.#state.kind !== 'done') done(malformed('the body ended before the final chunk'));
    else done();
  }

  #consume(): void {
    for (;;) {
      const state = this.#state;
      if (state.kind === 'done') {
        if (this.#pending.length > 0) throw malformed('data after the final chunk');
        return;
      }
      if (state.kind === 'header') {
        const end = this.#pending.indexOf(CRLF);
        if (end < 0) {
          if (this.#pending.length > MAX_HEADER_LINE) throw malformed('chunk header line too long');
          return;
        }
        this.#state = this.#header(this.#pending.subarray(0, end).toString('latin1'));
        this.#pending = this.#pending.subarray(end + 2);
        continue;
      }
      if (state.kind === 'data') {
        const take = Math.min(state.size - this.#dataBytes, this.#pending.length);
        if (take > 0) {
          this.#data.push(this.#pending.subarray(0, take));
          this.#dataBytes += take;
          this.#pending = this.#pending.subarray(take);
        }
        if (this.#dataBytes < state.size) return;
        this.#state = { kind: 'data-end', sizeText: state.sizeText, size: state.size };
        continue;
      }
      if (this.#pending.length < 2) return;
      if (this.#pending[0] !== 0x0d || this.#pending[1] !== 0x0a) {
        throw malformed('chunk data not followed by CRLF');
      }
      this.#pending = this.#pending.subarray(2);
      this.#emit(state.sizeText, state.size);
    }
  }

  #header(line: string): State {
    const m = CHUNK_HEADER.exec(line);
    if (!m) throw malformed(`chunk header ${JSON.stringify(line.slice(0, 40))}`);
    const sizeText = m[1] as string;
    const size = parseInt(sizeText, 16);
    if (size > this.#s.maxChunkBytes) {
      throw malformed(`a chunk of ${size} bytes (at most ${this.#s.maxChunkBytes})`);
    }
    if (this.#decoded + size > this.#s.decodedLength) {
      throw malformed(`more data than x-amz-decoded-content-length ${this.#s.decodedLength}`);
    }
    this.#data = [];
    this.#dataBytes = 0;
    // The final chunk is "0;chunk-signature=…\r\n" followed by the empty line.
    return size === 0 ? { kind: 'data-end', sizeText, size } : { kind: 'data', sizeText, size };
  }

  #emit(sizeText: string, size: number): void {
    const hash = createHash('sha256');
    for (const part of this.#data) hash.update(part);
    const signature = hmacHex(
      this.#s.key,
      chunkStringToSign(this.#s.amzDate, this.#s.scope, this.#previous, hash.digest('hex')),
    );
    this.#previous = signature;
    this.push(Buffer.from(`${sizeText};chunk-signature=${signature}\r\n`, 'latin1'));
    for (const part of this.#data) this.push(part);
    this.push(CRLF);
    this.#decoded += size;
    this.#data = [];
    this.#dataBytes = 0;
    if (size > 0) {
      this.#state = { kind: 'header' };
      return;
    }
    if (this.#decoded !== this.#s.decodedLength) {
      throw malformed(
        `${this.#decoded} data bytes, x-amz-decoded-content-length says ${this.#s.decodedLength}`,
      );
    }
    this.#state = { kind: 'done' };
  }
}
