// What the direct gRPC paths share (fast-unary.ts says why they exist; fast-stream.ts and
// credentials/grpc-fast.ts are the others): which requests qualify, the call's signal with
// Connect's reasons, reading and unframing the one request message, and the answers in gRPC's
// framing. Per call it allocates what a hand-written handler would (one controller, one close
// listener, the deadline timer): these are the agent's hottest paths.
import type http2 from 'node:http2';
import { fromBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import { InvalidArgumentError, ResourceExhaustedError } from '../../core/errors.ts';
import type { WorkloadApiLogger } from './log.ts';
import { SECURITY_HEADER } from './security-header.ts';

/**
 * The content type and deadline of a plain gRPC call (POST, application/grpc or
 * application/grpc+proto, no message compression, a well-formed or absent grpc-timeout); null
 * for anything else, which is left to connect-node.
 */
export function plainGrpc(
  headers: http2.IncomingHttpHeaders,
): { readonly contentType: string; readonly timeoutMs: number | undefined } | null {
  if (headers[':method'] !== 'POST') return null;
  const contentType = headers['content-type'];
  if (contentType !== 'application/grpc' && contentType !== 'application/grpc+proto') return null;
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return null;
  const timeout = headers['grpc-timeout'];
  if (Array.isArray(timeout)) return null;
  const timeoutMs = timeout === undefined ? undefined : parseGrpcTimeout(timeout);
  if (timeoutMs === null) return null;
  return { contentType, timeoutMs };
}

/**
 * Lets a call run detached: its handler answers every outcome itself, so what reaches here is a
 * stream that went away while an answer was being written (Node throws then), which must not
 * become an unhandled rejection.
 */
export function detach(handling: Promise<void>, log: WorkloadApiLogger, api: string): void {
  handling.catch((e: unknown) =>
    log.debug({ err: e instanceof Error ? e.message : String(e) }, `${api} stream ended early`),
  );
}

/**
 * The client went away: nothing is written to it any more, so one shared reason serves (a
 * ConnectError per call costs a stack trace per closed stream).
 */
export const CANCELLED = new ConnectError('request cancelled', Code.Canceled);

/** A reset stream emits 'error' and then 'close', which the call handles: nothing else to do. */
function ignore(): void {}

/**
 * One call's signal, aborted with Connect's reasons (Canceled when the stream closes,
 * DeadlineExceeded at the client's grpc-timeout) so handlers tell cancellation from failure.
 * The signal is made on first use: a cache hit answered synchronously never needs one (an
 * AbortController and its listeners are a visible share of such a call's CPU). `end()` it in a
 * finally.
 */
export class FastCall {
  #controller: AbortController | undefined;
  readonly #stream: http2.ServerHttp2Stream;
  readonly #deadline: ReturnType<typeof setTimeout> | undefined;
  readonly #onClose = (): void => this.abort(CANCELLED);

  constructor(stream: http2.ServerHttp2Stream, timeoutMs: number | undefined) {
    this.#stream = stream;
    stream.on('error', ignore);
    if (timeoutMs !== undefined) {
      this.#deadline = setTimeout(
        () => this.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#stream.closed || this.#stream.destroyed) this.#controller.abort(CANCELLED);
      else this.#stream.once('close', this.#onClose);
    }
    return this.#controller.signal;
  }

  /** Whether the call was aborted (without making a signal). */
  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }

  /** The call has a deadline: waits must also end at it (through `signal`). */
  get hasDeadline(): boolean {
    return this.#deadline !== undefined;
  }

  /** Aborts the call with `reason`; the first reason stays. */
  abort(reason: unknown): void {
    const signal = this.signal;
    if (!signal.aborted) this.#controller!.abort(reason);
  }

  /** The call is over: its deadline and close listener go. */
  end(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    if (this.#controller) this.#stream.removeListener('close', this.#onClose);
  }
}

/** Same rule and text as securityHeaderInterceptor: exactly one value, exactly "true". */
export function requireSecurityHeader(headers: http2.IncomingHttpHeaders): void {
  if (headers[SECURITY_HEADER] !== 'true') {
    throw new InvalidArgumentError('security header missing from request');
  }
}

/**
 * The request body, at most one message of `max` bytes plus its 5-byte frame header. Rejects
 * with CANCELLED when the stream closes first, and with the call's reason at its deadline.
 */
export function readBody(
  stream: http2.ServerHttp2Stream,
  max: number,
  call: FastCall,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const signal = call.hasDeadline ? call.signal : undefined;
    const fail = (e: unknown) => {
      cleanup();
      reject(e);
    };
    const onData = (c: Buffer) => {
      size += c.byteLength;
      if (size > max + 5) {
        fail(new ResourceExhaustedError(`message larger than ${max} bytes`));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = () => fail(CANCELLED);
    const onAbort = () => fail(signal!.reason);
    const cleanup = () => {
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    if (stream.closed || stream.destroyed) return reject(CANCELLED);
    if (signal?.aborted) return reject(signal.reason);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Connect's behaviour and text for a message that does not parse. */
export function parseMessage<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
): MessageShape<Desc> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    throw new ConnectError(`parse binary: ${m}`, Code.Internal);
  }
}

/**
 * The one uncompressed gRPC message of a request of a unary or server-streaming method (Connect's
 * texts and codes).
 */
export function unframe(body: Buffer, method = 'unary'): Uint8Array {
  if (body.byteLength < 5) {
    throw new ConnectError(
      `protocol error: missing input message for ${method} method`,
      Code.Unimplemented,
    );
  }
  if ((body[0]! & 0b1) !== 0) {
    throw new ConnectError(
      'protocol error: received compressed message without grpc-encoding',
      Code.Internal,
    );
  }
  const len = body.readUInt32BE(1);
  if (body.byteLength < 5 + len) {
    throw new ConnectError(
      'protocol error: promised more bytes than received',
      Code.InvalidArgument,
    );
  }
  if (body.byteLength > 5 + len) {
    throw new ConnectError(
      `protocol error: received extra input message for ${method} method`,
      Code.Unimplemented,
    );
  }
  return body.subarray(5);
}

/** grpc-timeout ("1-8 digits" + unit) in ms; null when malformed (then Connect handles it). */
export function parseGrpcTimeout(value: string): number | null {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return null;
  const n = Number(m[1]);
  const unitMs = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 }[
    m[2] as 'H' | 'M' | 'S' | 'm' | 'u' | 'n'
  ];
  return Math.min(n * unitMs, 2_147_483_647);
}

/** grpc-message: percent-encoded UTF-8 outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]+/g, (s) => encodeURIComponent(s));
}

/** One uncompressed gRPC message: flag 0, big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  return frame;
}

/** Answers a unary call with its one framed message and grpc-status 0; nothing if the stream went. */
export function respondMessage(
  stream: http2.ServerHttp2Stream,
  contentType: string,
  frame: Buffer,
): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': 200, 'content-type': contentType }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(frame);
}

/** Ends a gRPC call with an error: trailers-only before any message, else in the trailers. */
export function respondError(
  stream: http2.ServerHttp2Stream,
  contentType: string,
  ce: ConnectError,
): void {
  const status = grpcStatus(ce);
  if (!stream.headersSent) {
    stream.respond({ ':status': 200, 'content-type': contentType, ...status }, { endStream: true });
    return;
  }
  stream.once('wantTrailers', () => stream.sendTrailers(status));
  stream.end();
}

/**
 * grpc-status and grpc-message; an error with details (the credential API's denial) or metadata
 * also gets them as Connect writes them (grpc-status-details-bin). The message is encoded as gRPC
 * does it, since grpc-js decodes only what gRPC percent-encodes.
 */
function grpcStatus(ce: ConnectError): Record<string, string> {
  const status: Record<string, string> = {};
  if (ce.details.length > 0 || !ce.metadata.keys().next().done) {
    setTrailerStatus(new Headers(), ce).forEach((v, k) => (status[k] = v));
  } else {
    status['grpc-status'] = String(ce.code);
  }
  status['grpc-message'] = encodeGrpcMessage(ce.rawMessage);
  return status;
}
