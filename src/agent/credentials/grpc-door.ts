// The credential API on the Workload API socket: tessera.access.v1.Credentials/GetCredential.
// The caller is attested exactly as a Workload API caller (the connection's peer, pinned, its
// selectors and entries), the `workload.spiffe.io: true` header is required (the socket server's
// security-header interceptor, and the fast path below), and a denial is PermissionDenied whose
// message names the reason, policy and failed condition, with a tessera.v1.Denial detail for
// programs. Plain gRPC calls take a direct path (grpc-fast.ts); the rest go through Connect here.
import { create, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import {
  Credentials,
  GetCredentialResponseSchema,
  file_tessera_access_v1_credentials,
  type GetCredentialResponse,
} from '../../../proto/gen/tessera/access/v1/credentials_pb.js';
import { DenialSchema } from '../../../proto/gen/tessera/v1/release_pb.js';
import type { ReleasedCredential } from '../cache/credential-cache.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { attestCaller, type CallContext } from '../workload-api/caller.ts';
import { CredentialDeniedError, type CredentialService } from './credential-service.ts';

export const CREDENTIALS_SERVICE = Credentials.typeName;
export const GET_CREDENTIAL_PATH = `/${Credentials.typeName}/${Credentials.method.getCredential.name}`;
export { Credentials, file_tessera_access_v1_credentials };

export interface CredentialDoorDeps {
  readonly attestation: AttestationService;
  readonly credentials: CredentialService;
}

export function credentialsHandlers(d: CredentialDoorDeps): ServiceImpl<typeof Credentials> {
  return {
    async getCredential(req, ctx) {
      return getCredential(d, ctx, req);
    },
  };
}

/** Shared by the Connect route and the gRPC fast path. */
export async function getCredential(
  d: CredentialDoorDeps,
  ctx: CallContext,
  req: { readonly serverWorkload: string; readonly spiffeId: string },
): Promise<GetCredentialResponse> {
  // Unary and asked often on one connection: the connection's attestation may be reused,
  // re-validated (attestation-cache.ts), as FetchJWTSVID does.
  const caller = await attestCaller(d, ctx, true);
  try {
    const served = await d.credentials.get(
      caller,
      { server: req.serverWorkload, spiffeId: req.spiffeId },
      ctx.signal,
    );
    return responseOf(served.credential);
  } catch (e) {
    throw deniedToConnect(e);
  }
}

/**
 * A repeated call answered without a promise in between: the connection's reused attestation
 * (re-validated, its pin checked) and a cached credential; undefined when either is missing
 * (then getCredential). Throws, like getCredential, for a bad ask or a caller without the identity.
 */
export function cachedCredentialResponse(
  d: CredentialDoorDeps,
  peer: ConnectionPeer,
  req: { readonly serverWorkload: string; readonly spiffeId: string },
): GetCredentialResponse | undefined {
  const caller = d.attestation.reused(peer);
  if (caller === undefined) return undefined;
  const hit = d.credentials.cached(caller, { server: req.serverWorkload, spiffeId: req.spiffeId });
  return hit === undefined ? undefined : responseOf(hit);
}

const responses = new WeakMap<ReleasedCredential, GetCredentialResponse>();
const encoded = new WeakMap<GetCredentialResponse, Uint8Array>();

/** The response for a release, built once per release (cache hits answer the same object). */
export function responseOf(r: ReleasedCredential): GetCredentialResponse {
  let res = responses.get(r);
  if (res) return res;
  const v = r.credential.value;
  res = create(GetCredentialResponseSchema, {
    spiffeId: r.spiffeId,
    serverWorkload: r.server,
    value:
      v.kind === 'token'
        ? { case: 'token', value: v.token }
        : v.kind === 'password'
          ? { case: 'password', value: { username: v.username, password: v.password } }
          : {
              case: 'aws',
              value: {
                accessKeyId: v.accessKeyId,
                secretAccessKey: v.secretAccessKey,
                sessionToken: v.sessionToken,
              },
            },
    expiresAt: BigInt(r.credential.expiresAt ?? 0),
    present: r.present,
    leaseId: r.credential.leaseId,
    correlationId: r.correlationId,
  });
  responses.set(r, res);
  return res;
}

/** The response's wire bytes, encoded once per release. */
export function encodedResponse(res: GetCredentialResponse): Uint8Array {
  let b = encoded.get(res);
  if (!b) {
    b = toBinary(GetCredentialResponseSchema, res);
    encoded.set(res, b);
  }
  return b;
}

/** A denial as PermissionDenied with its tessera.v1.Denial detail; anything else unchanged. */
export function deniedToConnect(e: unknown): unknown {
  if (!(e instanceof CredentialDeniedError)) return e;
  const d = e.denial;
  return new ConnectError(e.message, Code.PermissionDenied, undefined, [
    {
      desc: DenialSchema,
      value: {
        reason: d.reason,
        policy: d.policy,
        failedCondition: d.failedCondition,
        correlationId: d.correlationId,
      },
    },
  ]);
}
