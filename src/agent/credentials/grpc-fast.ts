// A direct gRPC path for GetCredential, like the Workload API's for FetchJWTSVID
// (workload-api/fast-unary.ts, which says why; both use workload-api/fast-grpc.ts): a cached credential is the common answer and
// connect-node's per-call machinery would be most of the agent's CPU for it. Only plain gRPC
// requests take this path (POST, application/grpc[+proto], no message compression, a well-formed
// or absent grpc-timeout); anything else goes on to Connect, unchanged. Same rules as the Connect
// route: the security header, the request size bound, attestation, the error mapping (with the
// denial's detail in grpc-status-details-bin), the client's deadline and cancellation.
import type http2 from 'node:http2';
import { GetCredentialRequestSchema } from '../../../proto/gen/tessera/access/v1/credentials_pb.js';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { toConnectError } from '../workload-api/error-map.ts';
import {
  FastCall,
  detach,
  grpcFrame,
  parseMessage,
  plainGrpc,
  readBody,
  requireSecurityHeader,
  respondError,
  respondMessage,
  unframe,
} from '../workload-api/fast-grpc.ts';
import type { WorkloadApiLogger } from '../workload-api/log.ts';
import {
  GET_CREDENTIAL_PATH,
  cachedCredentialResponse,
  encodedResponse,
  getCredential,
  type CredentialDoorDeps,
} from './grpc-door.ts';

export interface FastCredentialDeps extends CredentialDoorDeps {
  readonly log: WorkloadApiLogger;
  readonly readMaxBytes: number;
}

/** Serves the stream when it is a plain gRPC GetCredential call (true); else touches nothing. */
export function serveFastGetCredential(
  d: FastCredentialDeps,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  peer: ConnectionPeer,
): boolean {
  if (headers[':path'] !== GET_CREDENTIAL_PATH) return false;
  const plain = plainGrpc(headers);
  if (!plain) return false;
  detach(
    handle(d, stream, headers, peer, plain.contentType, plain.timeoutMs),
    d.log,
    'credential API',
  );
  return true;
}

async function handle(
  d: FastCredentialDeps,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  peer: ConnectionPeer,
  contentType: string,
  timeoutMs: number | undefined,
): Promise<void> {
  const call = new FastCall(stream, timeoutMs);
  try {
    requireSecurityHeader(headers);
    const body = await readBody(stream, d.readMaxBytes, call);
    const req = parseMessage(GetCredentialRequestSchema, unframe(body));
    const res =
      cachedCredentialResponse(d, peer, req) ??
      (await getCredential(d, { peer, signal: call.signal }, req));
    if (call.aborted) throw call.signal.reason;
    respondMessage(stream, contentType, grpcFrame(encodedResponse(res)));
  } catch (e) {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    const reason: unknown = call.aborted ? call.signal.reason : e;
    // The denial goes in grpc-status-details-bin, as Connect writes it (fast-grpc.ts).
    respondError(stream, contentType, toConnectError(reason, GET_CREDENTIAL_PATH, d.log));
  } finally {
    call.end();
  }
}
