// Secret store metadata ↔ protobuf (proto/tessera/v1/secret.proto). Values only ever travel
// towards the server: nothing here converts one back.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { SecretSchema } from '../../proto/gen/tessera/v1/secret_pb.js';

/** The service's view of a secret (server/broker/secret-store.ts SecretInfo), structurally. */
export interface SecretMetadata {
  readonly name: string;
  readonly currentVersion: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly versions: readonly {
    readonly version: number;
    readonly createdAt: number;
    readonly kekId: string;
    readonly size: number;
  }[];
}

/** Times are Unix milliseconds, as the proto says. */
export function secretToWire(s: SecretMetadata): MessageInitShape<typeof SecretSchema> {
  return {
    name: s.name,
    currentVersion: s.currentVersion,
    createdAt: BigInt(s.createdAt),
    updatedAt: BigInt(s.updatedAt),
    versions: s.versions.map((v) => ({
      version: v.version,
      createdAt: BigInt(v.createdAt),
      kekId: v.kekId,
      size: v.size,
    })),
  };
}
