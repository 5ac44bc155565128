// The access model ↔ its wire messages (tessera/v1/access.proto). Times are Unix milliseconds.
// From the wire only the caller-settable fields are read; the server validates them.
import type { JsonObject, MessageInitShape } from '@bufbuild/protobuf';
import {
  type AccessPolicy,
  type CredentialProviderRecord,
  SERVER_PROTOCOLS,
  type ServerProtocol,
  type ServerWorkload,
} from '../core/access.ts';
import type {
  AccessPolicy as WireAccessPolicy,
  AccessPolicySchema,
  CredentialProvider as WireCredentialProvider,
  CredentialProviderSchema,
  ServerWorkload as WireServerWorkload,
  ServerWorkloadSchema,
} from '../../proto/gen/tessera/v1/access_pb.js';

/** A server workload's caller-settable fields, read alike from the domain and the wire. */
function serverWorkloadFields(w: ServerWorkload | WireServerWorkload) {
  return {
    name: w.name,
    host: w.host,
    port: w.port,
    protocol: w.protocol,
    pathPrefix: w.pathPrefix,
    present: w.present,
    tls: w.tls,
    tlsCa: w.tlsCa,
    tlsDecrypt: w.tlsDecrypt,
  };
}

export function serverWorkloadToWire(
  w: ServerWorkload,
): MessageInitShape<typeof ServerWorkloadSchema> {
  return {
    ...serverWorkloadFields(w),
    createdAt: BigInt(w.createdAt),
    updatedAt: BigInt(w.updatedAt),
  };
}

export function serverWorkloadFromWire(w: WireServerWorkload) {
  return serverWorkloadFields(w);
}

/**
 * A whole server workload as the server sent it (agents: ListAgentServerWorkloads, the persisted
 * sync state). Throws TypeError on a protocol this build does not know.
 */
export function serverWorkloadRecordFromWire(w: WireServerWorkload): ServerWorkload {
  if (!(SERVER_PROTOCOLS as readonly string[]).includes(w.protocol))
    throw new TypeError(`server workload "${w.name.slice(0, 64)}": unknown protocol`);
  return {
    ...serverWorkloadFields(w),
    protocol: w.protocol as ServerProtocol,
    createdAt: Number(w.createdAt),
    updatedAt: Number(w.updatedAt),
  };
}

export function credentialProviderToWire(
  p: CredentialProviderRecord,
): MessageInitShape<typeof CredentialProviderSchema> {
  return {
    name: p.name,
    type: p.type,
    // JSON-serialisable by contract (core/access.ts); the round trip drops anything else.
    config: JSON.parse(JSON.stringify(p.config)) as JsonObject,
    createdAt: BigInt(p.createdAt),
    updatedAt: BigInt(p.updatedAt),
  };
}

export function credentialProviderFromWire(p: WireCredentialProvider) {
  return { name: p.name, type: p.type, config: p.config ?? {} };
}

/** An access policy's fields but its effect, read alike from the domain and the wire. */
function accessPolicyFields(p: AccessPolicy | WireAccessPolicy) {
  return {
    name: p.name,
    client: p.client,
    server: p.server,
    credentialProvider: p.credentialProvider,
    condition: p.condition,
  };
}

export function accessPolicyToWire(p: AccessPolicy): MessageInitShape<typeof AccessPolicySchema> {
  return {
    ...accessPolicyFields(p),
    deny: p.effect === 'deny',
    createdAt: BigInt(p.createdAt),
    updatedAt: BigInt(p.updatedAt),
  };
}

export function accessPolicyFromWire(p: WireAccessPolicy) {
  return { ...accessPolicyFields(p), deny: p.deny };
}
