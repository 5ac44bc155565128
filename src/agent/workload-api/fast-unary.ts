// A direct gRPC path for FetchJWTSVID, the one Workload API call that workloads make at a high
// rate (every outgoing request of a JWT-authenticated service may ask for a token). Through
// connect-node, each call costs a compat request/response pair, header conversions, several
// async-iterable layers, a linked AbortController and a DOMException when Connect aborts the
// call's signal at its end: most of the agent's CPU per call. Here the HTTP/2 stream is served
// directly: one gRPC message in, one out.
//
// Only plain gRPC requests take this path: POST /SpiffeWorkloadAPI/FetchJWTSVID with
// content-type application/grpc or application/grpc+proto, no message compression, and a
// well-formed or absent grpc-timeout. Anything else (the Connect protocol, gRPC-web, compressed
// messages) is left to connect-node, unchanged. The rules are the same as on that route: the
// security header (security-header.ts), the request checks, attestation and the pin
// (caller.ts via handlers.ts fetchJwtSvid), the error mapping (error-map.ts), readMaxBytes, the
// client's deadline and cancellation.
import type http2 from 'node:http2';
import { fromBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { InvalidArgumentError, ResourceExhaustedError } from '../../core/errors.ts';
import { JWTSVIDRequestSchema } from '../../../proto/gen/spiffe/workload_pb.js';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { toConnectError } from './error-map.ts';
import { cachedJwtSvidItems, fetchJwtSvidItems, type WorkloadHandlerDeps } from './handlers.ts';
import type { JwtResponseFrames } from './jwt-response-frames.ts';
import { SECURITY_HEADER } from './security-header.ts';

export const FAST_PATH = '/SpiffeWorkloadAPI/FetchJWTSVID';

export interface FastUnaryDeps extends WorkloadHandlerDeps {
  readonly readMaxBytes: number;
  /** Encoded answers, kept per token. */
  readonly frames: JwtResponseFrames;
  readonly peerOf: (session: http2.Http2Session | undefined) => ConnectionPeer;
}

/**
 * Serves the stream when it is a plain gRPC FetchJWTSVID call and returns true; returns false
 * (having touched nothing) for every other request.
 */
export function serveFastUnary(
  d: FastUnaryDeps,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): boolean {
  if (headers[':path'] !== FAST_PATH) return false;
  const plain = plainGrpc(headers);
  if (!plain) return false;
  const { contentType, timeoutMs } = plain;
  // handle() answers every outcome itself; this catch is for a stream that went away while an
  // answer was being written (Node throws then), which must not become an unhandled rejection.
  handle(d, stream, headers, contentType, timeoutMs).catch((e: unknown) =>
    d.log.debug(
      { err: e instanceof Error ? e.message : String(e) },
      'workload API stream ended early',
    ),
  );
  return true;
}

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

async function handle(
  d: FastUnaryDeps,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  contentType: string,
  timeoutMs: number | undefined,
): Promise<void> {
  // Aborted with Connect's reasons, so caller.ts/handlers.ts tell cancellation from failure.
  const call = new AbortController();
  const onClose = () => {
    if (!call.signal.aborted) call.abort(new ConnectError('request cancelled', Code.Canceled));
  };
  stream.once('close', onClose);
  stream.on('error', () => {}); // a reset stream: 'close' follows, nothing else to do
  const deadline =
    timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => call.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded)),
          timeoutMs,
        );
  try {
    // Same rule and text as securityHeaderInterceptor: exactly one value, exactly "true".
    if (headers[SECURITY_HEADER] !== 'true') {
      throw new InvalidArgumentError('security header missing from request');
    }
    const body = await readBody(stream, d.readMaxBytes, call.signal);
    const req = parseRequest(unframe(body));
    const peer = d.peerOf(stream.session);
    // A repeated call is answered without a promise in between: reused attestation, cached
    // token, its frame encoded once (jwt-response-frames.ts).
    const svids =
      cachedJwtSvidItems(d, peer, req) ??
      (await fetchJwtSvidItems(d, { peer, signal: call.signal }, req));
    if (call.signal.aborted) return;
    const frame = d.frames.frame(svids);
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': contentType }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  } catch (e) {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    const reason: unknown = call.signal.aborted ? call.signal.reason : e;
    const ce = toConnectError(reason, FAST_PATH, d.log);
    // Trailers-only response, as gRPC servers (and connect-node) send for an error.
    respondError(stream, contentType, ce);
  } finally {
    if (deadline) clearTimeout(deadline);
    stream.removeListener('close', onClose);
  }
}

/** The request body, at most one message of `max` bytes plus its 5-byte frame header. */
export function readBody(
  stream: http2.ServerHttp2Stream,
  max: number,
  signal: AbortSignal,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
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
    const onAbort = () => fail(signal.reason);
    const cleanup = () => {
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      signal.removeEventListener('abort', onAbort);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Connect's behaviour and text for a message that does not parse. */
function parseRequest(bytes: Uint8Array) {
  try {
    return fromBinary(JWTSVIDRequestSchema, bytes);
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

/** Ends a gRPC call with an error: trailers-only before any message, else in the trailers. */
export function respondError(
  stream: http2.ServerHttp2Stream,
  contentType: string,
  ce: ConnectError,
): void {
  const status = {
    'grpc-status': String(ce.code),
    'grpc-message': encodeGrpcMessage(ce.rawMessage),
  };
  if (!stream.headersSent) {
    stream.respond({ ':status': 200, 'content-type': contentType, ...status }, { endStream: true });
    return;
  }
  stream.once('wantTrailers', () => stream.sendTrailers(status));
  stream.end();
}
