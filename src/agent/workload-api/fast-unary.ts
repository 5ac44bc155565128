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
// client's deadline and cancellation. The pieces the direct paths share are in fast-grpc.ts.
import type http2 from 'node:http2';
import { JWTSVIDRequestSchema } from '../../../proto/gen/spiffe/workload_pb.js';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { toConnectError } from './error-map.ts';
import { cachedJwtSvidItems, fetchJwtSvidItems, type WorkloadHandlerDeps } from './handlers.ts';
import {
  FastCall,
  detach,
  parseMessage,
  plainGrpc,
  readBody,
  requireSecurityHeader,
  respondError,
  respondMessage,
  unframe,
} from './fast-grpc.ts';
import type { JwtResponseFrames } from './jwt-response-frames.ts';

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
  detach(handle(d, stream, headers, contentType, timeoutMs), d.log, 'workload API');
  return true;
}

async function handle(
  d: FastUnaryDeps,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  contentType: string,
  timeoutMs: number | undefined,
): Promise<void> {
  const call = new FastCall(stream, timeoutMs);
  try {
    requireSecurityHeader(headers);
    const body = await readBody(stream, d.readMaxBytes, call);
    const req = parseMessage(JWTSVIDRequestSchema, unframe(body));
    const peer = d.peerOf(stream.session);
    // A repeated call is answered without a promise in between: reused attestation, cached
    // token, its frame encoded once (jwt-response-frames.ts).
    const svids =
      cachedJwtSvidItems(d, peer, req) ??
      (await fetchJwtSvidItems(d, { peer, signal: call.signal }, req));
    if (call.aborted) return;
    respondMessage(stream, contentType, d.frames.frame(svids));
  } catch (e) {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    const reason: unknown = call.aborted ? call.signal.reason : e;
    const ce = toConnectError(reason, FAST_PATH, d.log);
    // Trailers-only response, as gRPC servers (and connect-node) send for an error.
    respondError(stream, contentType, ce);
  } finally {
    call.end();
  }
}
