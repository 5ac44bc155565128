// Reads PostgreSQL packets off a stream during the startup and authentication phase, bounded in
// size and in time (the caller's signal), and hands back whatever was read past the last packet
// when the proxy switches to relaying raw bytes.
import type { Readable } from 'node:stream';

/** The peer closed, or sent something too large, before the expected packet was complete. */
export class FrameError extends Error {
  readonly reason: 'closed' | 'too-large' | 'aborted';
  constructor(reason: FrameError['reason'], message: string) {
    super(message);
    this.name = 'FrameError';
    this.reason = reason;
  }
}

export interface Frame {
  /** The type byte as a character ('R', 'E', …). */
  readonly type: string;
  readonly body: Buffer;
  /** The whole message, type byte and length included, for relaying unchanged. */
  readonly raw: Buffer;
}

export class FrameReader {
  readonly #stream: Readable;
  readonly #maxBuffered: number;
  #buf: Buffer = Buffer.alloc(0);
  #ended: string | undefined;
  #wake: (() => void) | undefined;
  readonly #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    // Bound memory: stop reading until a packet is taken off.
    if (this.#buf.length >= this.#maxBuffered) this.#stream.pause();
    this.#wake?.();
  };
  readonly #onEnd = (): void => {
    this.#ended ??= 'the peer closed the connection';
    this.#wake?.();
  };
  readonly #onError = (e: Error): void => {
    this.#ended ??= `connection error: ${(e as NodeJS.ErrnoException).code ?? e.message}`;
    this.#wake?.();
  };

  /** `maxBuffered`: the most bytes held before reading pauses (≥ the largest packet expected). */
  constructor(stream: Readable, maxBuffered: number) {
    this.#stream = stream;
    this.#maxBuffered = maxBuffered;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
  }

  /** Waits until `n` bytes are buffered. */
  async #need(n: number, signal: AbortSignal): Promise<void> {
    while (this.#buf.length < n) {
      if (this.#ended !== undefined) throw new FrameError('closed', this.#ended);
      if (signal.aborted) throw new FrameError('aborted', 'timed out or stopped');
      this.#stream.resume();
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#wake = undefined;
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.#wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  #take(n: number): Buffer {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** One byte (the answer to an SSLRequest). */
  async byte(signal: AbortSignal): Promise<number> {
    await this.#need(1, signal);
    return this.#take(1)[0]!;
  }

  /** Bytes already read and not yet taken. */
  get buffered(): number {
    return this.#buf.length;
  }

  /** An untyped startup-phase packet; `checkLength` validates the length word (throws). */
  async startup(signal: AbortSignal, checkLength: (head: Buffer) => number): Promise<Buffer> {
    await this.#need(4, signal);
    const length = checkLength(this.#buf.subarray(0, 4));
    await this.#need(length, signal);
    return Buffer.from(this.#take(length));
  }

  /** A typed message of at most `max` bytes. */
  async message(signal: AbortSignal, max: number): Promise<Frame> {
    await this.#need(5, signal);
    const length = this.#buf.readInt32BE(1);
    if (length < 4 || length + 1 > max) {
      throw new FrameError('too-large', `message length ${length} outside 4..${max - 1}`);
    }
    await this.#need(length + 1, signal);
    const raw = Buffer.from(this.#take(length + 1));
    return { type: String.fromCharCode(raw[0]!), body: raw.subarray(5), raw };
  }

  /** Stops reading (the stream stays paused) and returns the bytes read past the last packet. */
  detach(): Buffer {
    this.#stream.pause();
    this.#stream.off('data', this.#onData);
    this.#stream.off('end', this.#onEnd);
    this.#stream.off('close', this.#onEnd);
    this.#stream.off('error', this.#onError);
    return this.#take(this.#buf.length);
  }
}
