// Cached credential uses and the agent's server workload list ↔ the wire (release.proto
// ReportCachedUses, ListAgentServerWorkloads). Times are Unix milliseconds, 0 = none.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { CachedCredentialUse } from '../core/access.ts';
import type {
  CachedUse as WireCachedUse,
  CachedUseSchema,
} from '../../proto/gen/tessera/v1/release_pb.js';

export function cachedUseToWire(u: CachedCredentialUse): MessageInitShape<typeof CachedUseSchema> {
  return {
    entryId: u.entryId,
    selectors: [...u.selectors],
    attributes: { ...u.attributes },
    server: u.server,
    httpMethod: u.request?.method ?? '',
    httpPath: u.request?.path ?? '',
    httpHost: u.request?.host ?? '',
    correlationId: u.correlationId,
    releasedCorrelationId: u.releasedCorrelationId,
    policy: u.policy,
    credentialProvider: u.credentialProvider,
    leaseId: u.leaseId,
    expiresAt: BigInt(u.expiresAt ?? 0),
    at: BigInt(u.at),
    wayIn: u.wayIn,
  };
}

/** Untrusted, from the agent: the server checks every field (server/broker/cached-uses.ts). */
export function cachedUseFromWire(w: WireCachedUse): CachedCredentialUse {
  const http = w.httpMethod !== '' || w.httpPath !== '' || w.httpHost !== '';
  return {
    entryId: w.entryId,
    selectors: w.selectors,
    attributes: w.attributes,
    server: w.server,
    ...(http ? { request: { method: w.httpMethod, path: w.httpPath, host: w.httpHost } } : {}),
    correlationId: w.correlationId,
    releasedCorrelationId: w.releasedCorrelationId,
    policy: w.policy,
    credentialProvider: w.credentialProvider,
    leaseId: w.leaseId,
    expiresAt: w.expiresAt === 0n ? null : safeMs(w.expiresAt),
    at: safeMs(w.at),
    wayIn: w.wayIn,
  };
}

/** A time beyond what a Number holds exactly becomes -1, which the checks refuse. */
const safeMs = (v: bigint): number =>
  v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : -1;
