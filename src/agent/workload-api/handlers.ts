// SpiffeWorkloadAPI (spec SPIFFE_Workload_API.md, spiffe.md §2). The security header is checked
// by security-header.ts and errors are mapped in error-map.ts; here: attestation, the view, and
// the streaming rules (full state at once, then on change, identical repeats suppressed).
import {
  equals,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  InvalidArgumentError,
  PermissionDeniedError,
  TesseraError,
  UnavailableError,
} from '../../core/errors.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import type { JWTSVIDResponseSchema } from '../../../proto/gen/spiffe/workload_pb.js';
import {
  JWTBundlesResponseSchema,
  X509BundlesResponseSchema,
  X509SVIDResponseSchema,
  type SpiffeWorkloadAPI,
} from '../../../proto/gen/spiffe/workload_pb.js';
import { DeadlineError, withinDeadline } from './abortable.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import {
  attestCaller,
  cancelled,
  connectionPeerKey,
  type CallContext,
  type CallerDeps,
} from './caller.ts';
import { followCaller } from './caller-updates.ts';
import { claimsStruct } from './claims.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import type { JwtSvidItem, WorkloadIdentitySource, WorkloadView } from './identity-source.ts';
import type { WorkloadApiLogger } from './log.ts';
import { jwtBundlesResponse, uniqueHints, usableHint, x509BundlesResponse } from './responses.ts';
import { x509SvidResponse } from './responses.ts';
import { fullStateStream } from './watch.ts';

export interface WorkloadHandlerDeps extends CallerDeps {
  readonly source: WorkloadIdentitySource;
  readonly log: WorkloadApiLogger;
  /** Bound on minting/fetching JWT-SVIDs and on validating one (the source may call the server). */
  readonly jwtTimeoutMs: number;
  /** Aborted at shutdown: open streams end with Unavailable, so clients reconnect elsewhere. */
  readonly shutdown: AbortSignal;
}

export function workloadApiHandlers(d: WorkloadHandlerDeps): ServiceImpl<typeof SpiffeWorkloadAPI> {
  return {
    // Streams, like FetchJWTSVID, may start from the connection's last attestation, re-validated
    // (attestation-cache.ts): a thousand streams opened on one connection attest once.
    async *fetchX509SVID(_req, ctx) {
      const caller = await attestCaller(d, ctx, true);
      yield* viewStream(d, ctx, caller, X509SVIDResponseSchema, x509SvidResponse, true);
    },
    async *fetchX509Bundles(_req, ctx) {
      const caller = await attestCaller(d, ctx, true);
      yield* viewStream(d, ctx, caller, X509BundlesResponseSchema, x509BundlesResponse);
    },
    async *fetchJWTBundles(_req, ctx) {
      const caller = await attestCaller(d, ctx, true);
      yield* viewStream(d, ctx, caller, JWTBundlesResponseSchema, jwtBundlesResponse);
    },
    fetchJWTSVID: (req, ctx) => fetchJwtSvid(d, ctx, req),
    // No attestation: the port validates against every bundle this agent holds, whoever asks,
    // so attesting would cost time without changing the answer.
    async validateJWTSVID(req, ctx) {
      if (req.audience === '') throw new InvalidArgumentError('audience must be specified');
      if (req.svid === '') throw new InvalidArgumentError('svid must be specified');
      // The caller's entries decide which federated trust domains it trusts (as in SPIRE); a
      // caller without an identity may still validate tokens of the own trust domain.
      const caller = await attestCaller(d, ctx, true);
      const { spiffeId, claims } = await bounded(
        d,
        ctx,
        d.source.validateJwtSvid(req.svid, req.audience, caller),
      );
      return { spiffeId, claims: claimsStruct(claims) };
    },
    fetchWITSVID: () => failedStream(witUnsupported()),
    fetchWITBundles: () => failedStream(witUnsupported()),
  };
}

/**
 * FetchJWTSVID, shared by the Connect route and the gRPC fast path (fast-unary.ts). Unary and
 * called often on one connection: the connection's attestation may be reused (caller.ts).
 */
export async function fetchJwtSvid(
  d: WorkloadHandlerDeps,
  ctx: CallContext,
  req: JwtSvidRequest,
): Promise<MessageInitShape<typeof JWTSVIDResponseSchema>> {
  const svids = await fetchJwtSvidItems(d, ctx, req);
  return {
    svids: uniqueHints(svids).map((s) => ({
      spiffeId: s.spiffeId,
      svid: s.token,
      hint: usableHint(s.hint),
    })),
  };
}

/** FetchJWTSVID's SVIDs (the answer before encoding); the request is checked first. */
export async function fetchJwtSvidItems(
  d: WorkloadHandlerDeps,
  ctx: CallContext,
  req: JwtSvidRequest,
): Promise<JwtSvidItem[]> {
  checkJwtSvidRequest(req.audience, req.spiffeId);
  const caller = await attestCaller(d, ctx, true);
  const svids = await bounded(d, ctx, d.source.fetchJwtSvids(caller, req.audience, req.spiffeId));
  if (svids.length === 0) throw new PermissionDeniedError('no identity issued');
  return svids;
}

/**
 * FetchJWTSVID's SVIDs when the whole answer is at hand, synchronously: the connection's
 * attestation reused (re-validated, pin checked) and every JWT-SVID cached. undefined otherwise
 * (then fetchJwtSvidItems, which attests and mints as needed). Same checks and errors as that
 * path: the request first, then the pin.
 */
export function cachedJwtSvidItems(
  d: WorkloadHandlerDeps,
  peer: ConnectionPeer,
  req: JwtSvidRequest,
): JwtSvidItem[] | undefined {
  checkJwtSvidRequest(req.audience, req.spiffeId);
  if (d.source.cachedJwtSvids === undefined) return undefined;
  const caller = d.attestation.reused(peer);
  if (caller === undefined) return undefined;
  return d.source.cachedJwtSvids(caller, req.audience, req.spiffeId);
}

type JwtSvidRequest = { readonly audience: readonly string[]; readonly spiffeId: string };

/** FetchJWTSVID's mandatory-field rules (spec §5): both are InvalidArgument, before attesting. */
export function checkJwtSvidRequest(audience: readonly string[], spiffeId: string): void {
  if (audience.length === 0) throw new InvalidArgumentError('audience must be specified');
  if (audience.some((a) => a === '')) {
    throw new InvalidArgumentError('audience must not contain empty values');
  }
  if (spiffeId === '') return;
  try {
    SpiffeId.parse(spiffeId);
  } catch (e) {
    const reason = e instanceof Error ? e.message : 'invalid';
    throw new InvalidArgumentError(`invalid requested SPIFFE ID: ${reason}`);
  }
}

/**
 * The caller's view as a stream of full-state messages. A caller without any identity gets
 * PermissionDenied "no identity issued" — at the start and also when its last identity goes
 * away mid-stream, as SPIRE does: a stream that ended tells the client "drop everything and
 * retry with backoff", which an empty message could not say for the X.509-SVID stream (its
 * svids field is required). The bundle streams follow the same rule (SPIRE without
 * allow_unauthenticated_verifiers), so federated bundles are never shown to an unknown caller;
 * for them a caller is known when it matches an entry, even before its X.509-SVID is minted
 * (`needsSvid` false: a restarted agent serves bundles from its persisted state while the
 * server is away).
 */
async function* viewStream<D extends DescMessage>(
  d: WorkloadHandlerDeps,
  ctx: HandlerContext,
  caller: AttestedCaller,
  schema: D,
  toMessage: (view: WorkloadView) => MessageShape<D>,
  needsSvid = false,
): AsyncGenerator<MessageShape<D>> {
  await d.source.prepare(caller);
  // The X.509-SVID stream carries the caller's identity: its process is re-checked while the
  // stream runs (caller-updates.ts), and a change of it recomputes the answer as any change does.
  const changes = new Set<() => void>();
  const self = needsSvid
    ? followCaller(d, ctx.values.get(connectionPeerKey), caller, () => changes.forEach((f) => f()))
    : { current: caller, failure: undefined, stop() {} };
  const source = {
    onChange(listener: () => void): () => void {
      const off = d.source.onChange(listener);
      changes.add(listener);
      return () => {
        off();
        changes.delete(listener);
      };
    },
  };
  let first = true;
  const compute = () => {
    if (self.failure) throw self.failure;
    // The first message uses the call's match; later ones (on a change) match again, so entries
    // created or deleted for these selectors show on the open stream.
    const current = first ? caller : d.attestation.rematch(self.current);
    first = false;
    const view = d.source.view(current);
    if (needsSvid ? view.svids.length === 0 : !view.identified)
      throw new PermissionDeniedError('no identity issued');
    return toMessage(view);
  };
  const signal = AbortSignal.any([ctx.signal, d.shutdown]);
  try {
    yield* fullStateStream(source, signal, compute, (a, b) => equals(schema, a, b));
  } finally {
    self.stop();
  }
  if (d.shutdown.aborted) throw new UnavailableError('the Workload API is shutting down');
}

/** The source's answer, or Unavailable (retry) when it takes longer than jwtTimeoutMs. */
async function bounded<T>(d: WorkloadHandlerDeps, ctx: CallContext, p: Promise<T>): Promise<T> {
  try {
    return await withinDeadline(p, ctx.signal, d.jwtTimeoutMs);
  } catch (e) {
    if (ctx.signal.aborted) throw cancelled(ctx);
    if (e instanceof DeadlineError) {
      throw new UnavailableError('timed out waiting for the JWT-SVID service');
    }
    throw e;
  }
}

function witUnsupported(): TesseraError {
  return new TesseraError('unimplemented', 'the WIT-SVID profile is not supported');
}

/** A stream that fails before its first message. */
async function* failedStream(e: Error): AsyncGenerator<never> {
  throw e;
}
