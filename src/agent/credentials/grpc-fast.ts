// A direct gRPC path for GetCredential, like the Workload API's for FetchJWTSVID
// (workload-api/fast-unary.ts, which says why): a cached credential is the common answer and
// connect-node's per-call machinery would be most of the agent's CPU for it. Only plain gRPC
// requests take this path (POST, application/grpc[+proto], no message compression, a well-formed
// or absent grpc-timeout); anything else goes on to Connect, unchanged. Same rules as the Connect
// route: the security header, the request size bound, attestation, the error mapping (with the
// denial's detail in grpc-status-details-bin), the client's deadline and cancellation.
import type http2 from 'node:http2';
import { fromBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import { InvalidArgumentError } from '../../core/errors.ts';
import { GetCredentialRequestSchema } from '../../../proto/gen/tessera/access/v1/credentials_pb.js';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { toConnectError } from '../workload-api/error-map.ts';
import { encodeGrpcMessage, plainGrpc, readBody, unframe } from '../workload-api/fast-unary.ts';
import type { WorkloadApiLogger } from '../workload-api/log.ts';
import { SECURITY_HEADER } from '../workload-api/security-header.ts';
import {
  GET_CREDENTIAL_PATH,
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
  handle(d, stream, headers, peer, plain.contentType, plain.timeoutMs).catch((e: unknown) =>
    d.log.debug(
      { err: e instanceof Error ? e.message : String(e) },
      'credential API stream ended early',
    ),
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
  const call = new AbortController();
  const onClose = () => {
    if (!call.signal.aborted) call.abort(new ConnectError('request cancelled', Code.Canceled));
  };
  stream.once('close', onClose);
  stream.on('error', () => {});
  const deadline =
    timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => call.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded)),
          timeoutMs,
        );
  try {
    if (headers[SECURITY_HEADER] !== 'true') {
      throw new InvalidArgumentError('security header missing from request');
    }
    const body = await readBody(stream, d.readMaxBytes, call.signal);
    const req = parseRequest(unframe(body));
    const res = await getCredential(d, { peer, signal: call.signal }, req);
    if (call.signal.aborted) throw call.signal.reason;
    const out = encodedResponse(res);
    const frame = Buffer.allocUnsafe(5 + out.byteLength);
    frame[0] = 0;
    frame.writeUInt32BE(out.byteLength, 1);
    frame.set(out, 5);
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': contentType }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  } catch (e) {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    const reason: unknown = call.signal.aborted ? call.signal.reason : e;
    const ce = toConnectError(reason, GET_CREDENTIAL_PATH, d.log);
    // grpc-status-details-bin (the denial) as Connect writes it; the message encoded as the
    // Workload API's fast path does (grpc-js decodes only what gRPC percent-encodes).
    const status: Record<string, string> = {};
    setTrailerStatus(new Headers(), ce).forEach((v, k) => (status[k] = v));
    status['grpc-message'] = encodeGrpcMessage(ce.rawMessage);
    stream.respond({ ':status': 200, 'content-type': contentType, ...status }, { endStream: true });
  } finally {
    if (deadline) clearTimeout(deadline);
    stream.removeListener('close', onClose);
  }
}

function parseRequest(bytes: Uint8Array) {
  try {
    return fromBinary(GetCredentialRequestSchema, bytes);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    throw new ConnectError(`parse binary: ${m}`, Code.Internal);
  }
}
