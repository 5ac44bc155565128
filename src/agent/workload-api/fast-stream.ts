// A direct gRPC path for the Workload API's server streams (FetchX509SVID, FetchX509Bundles,
// FetchJWTBundles), as fast-unary.ts is for FetchJWTSVID. Through connect-node, every stream
// holds a compat request/response pair, several async-iterable layers and a linked
// AbortController, and every message is built and encoded per stream: most of the agent's CPU
// per stream opened and per change pushed to a thousand open streams. Here the HTTP/2 stream is
// served directly, and the messages are the shared frames of shared-responses.ts: each distinct
// answer is encoded once per change and the same bytes are written to every stream that gets it.
//
// Only plain gRPC requests take this path (fast-grpc.ts plainGrpc); anything else is left to
// connect-node, unchanged. The rules are those of the Connect route (handlers.ts viewStream):
// the security header, one request message, attestation (the connection's, re-validated: as
// FetchJWTSVID), prepare, full state at once then on change with identical repeats suppressed,
// PermissionDenied "no identity issued" when the identity is gone, Unavailable at shutdown, the
// error mapping (error-map.ts), readMaxBytes, the client's deadline and cancellation.
import type http2 from 'node:http2';
import type { DescMessage } from '@bufbuild/protobuf';
import { UnavailableError } from '../../core/errors.ts';
import {
  JWTBundlesRequestSchema,
  JWTBundlesResponseSchema,
  X509BundlesRequestSchema,
  X509BundlesResponseSchema,
  X509SVIDRequestSchema,
  X509SVIDResponseSchema,
} from '../../../proto/gen/spiffe/workload_pb.js';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { attestCaller } from './caller.ts';
import { followCaller } from './caller-updates.ts';
import { toConnectError } from './error-map.ts';
import {
  FastCall,
  detach,
  parseMessage,
  plainGrpc,
  readBody,
  requireSecurityHeader,
  respondError,
  unframe,
} from './fast-grpc.ts';
import type { FastUnaryDeps } from './fast-unary.ts';
import { jwtBundlesResponse, x509BundlesResponse, x509SvidResponse } from './responses.ts';
import { SharedResponses, type StreamKind } from './shared-responses.ts';

export interface FastStreamDeps extends FastUnaryDeps {
  readonly responses: SharedResponses;
}

interface Route {
  readonly request: DescMessage;
  readonly kind: StreamKind;
  /** The stream carries the caller's identity: its process is re-checked while it runs. */
  readonly followsCaller: boolean;
}

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  [
    '/SpiffeWorkloadAPI/FetchX509SVID',
    {
      request: X509SVIDRequestSchema,
      kind: {
        name: 'x509-svid',
        schema: X509SVIDResponseSchema,
        toMessage: x509SvidResponse,
        needsSvid: true,
      },
      followsCaller: true,
    },
  ],
  [
    '/SpiffeWorkloadAPI/FetchX509Bundles',
    {
      request: X509BundlesRequestSchema,
      kind: {
        name: 'x509-bundles',
        schema: X509BundlesResponseSchema,
        toMessage: x509BundlesResponse,
        needsSvid: false,
      },
      followsCaller: false,
    },
  ],
  [
    '/SpiffeWorkloadAPI/FetchJWTBundles',
    {
      request: JWTBundlesRequestSchema,
      kind: {
        name: 'jwt-bundles',
        schema: JWTBundlesResponseSchema,
        toMessage: jwtBundlesResponse,
        needsSvid: false,
      },
      followsCaller: false,
    },
  ],
]);

/**
 * Serves the stream when it is a plain gRPC call of one of the three server-streaming methods
 * and returns true; returns false (having touched nothing) for every other request.
 */
export function serveFastStream(
  d: FastStreamDeps,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): boolean {
  const path = headers[':path'];
  const route = path === undefined ? undefined : ROUTES.get(path);
  if (route === undefined) return false;
  const plain = plainGrpc(headers);
  if (!plain) return false;
  detach(
    handle(d, stream, headers, path!, route, plain.contentType, plain.timeoutMs),
    d.log,
    'workload API',
  );
  return true;
}

async function handle(
  d: FastStreamDeps,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  path: string,
  route: Route,
  contentType: string,
  timeoutMs: number | undefined,
): Promise<void> {
  // Aborted with Connect's reasons (and Unavailable at shutdown), so the end is reported as the
  // Connect route reports it.
  const call = new FastCall(stream, timeoutMs);
  const onShutdown = () => call.abort(new UnavailableError('the Workload API is shutting down'));
  d.shutdown.addEventListener('abort', onShutdown, { once: true });
  if (d.shutdown.aborted) onShutdown();
  try {
    requireSecurityHeader(headers);
    const body = await readBody(stream, d.readMaxBytes, call);
    parseMessage(route.request, unframe(body, 'server-streaming'));
    const ctx = { peer: d.peerOf(stream.session), signal: call.signal };
    // Nothing is written before the caller is attested: an unattested caller gets its error only.
    const caller = await attestCaller(d, ctx, true);
    await d.source.prepare(caller);
    const followed = route.followsCaller ? { peer: ctx.peer } : undefined;
    await follow(d, stream, route.kind, caller, followed, contentType, call.signal);
    throw call.signal.reason;
  } catch (e) {
    if (stream.destroyed || stream.closed) return;
    const reason: unknown = call.aborted ? call.signal.reason : e;
    respondError(stream, contentType, toConnectError(reason, path, d.log));
  } finally {
    call.end();
    d.shutdown.removeEventListener('abort', onShutdown);
  }
}

/**
 * Writes the caller's answer at once and again after every change whose answer differs from the
 * last one written (identical repeats are suppressed, as SPIRE does with proto.Equal: the
 * encoding of a view is deterministic, so equal bytes are equal messages). Notifications coalesce:
 * one recomputation per burst, and none while a slow reader has not drained the last message.
 * With `followed`, the caller's process is re-checked while the stream runs (caller-updates.ts):
 * its new self is answered for, and its failure ends the stream.
 * Resolves when `signal` aborts; rejects with the answer's error (the identity went away).
 * Event-driven rather than an async loop: with a thousand open streams a change wakes each one.
 */
function follow(
  d: FastStreamDeps,
  stream: http2.ServerHttp2Stream,
  kind: StreamKind,
  caller: AttestedCaller,
  followed: { readonly peer: ConnectionPeer } | undefined,
  contentType: string,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const self = followed
      ? followCaller(d, followed.peer, caller, () => schedule())
      : { current: caller, failure: undefined, stop() {} };
    const closeShared = d.responses.open();
    let last: Buffer | undefined;
    let pending = true;
    let draining = false;
    let done = false;
    const finish = (e?: Error) => {
      if (done) return;
      done = true;
      off();
      self.stop();
      closeShared();
      signal.removeEventListener('abort', onAbort);
      stream.removeListener('drain', onDrain);
      if (e) reject(e);
      else resolve();
    };
    const send = () => {
      pending = false;
      if (done) return;
      if (stream.destroyed || stream.closed) return finish();
      if (self.failure) return finish(self.failure);
      const current = self.current;
      const answer = d.responses.answer(kind, current, SharedResponses.callerKey(current));
      if ('error' in answer) return finish(answer.error);
      if (last !== undefined && (last === answer.frame || last.equals(answer.frame))) return;
      last = answer.frame;
      if (!stream.headersSent) {
        stream.respond({ ':status': 200, 'content-type': contentType }, { waitForTrailers: true });
      }
      if (!stream.write(answer.frame)) draining = true;
    };
    const onDrain = () => {
      draining = false;
      if (pending) send();
    };
    // Runs inside the source's notification: the shared answers are dropped before any stream
    // recomputes (in a microtask, after every listener ran).
    const schedule = () => {
      if (pending) return;
      pending = true;
      if (!draining) queueMicrotask(send);
    };
    const off = d.source.onChange(() => {
      d.responses.changed();
      schedule();
    });
    const onAbort = () => finish();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('drain', onDrain);
    if (signal.aborted) finish();
    else send();
  });
}
