// The credential API as a service of the Workload API socket server (workload-api/server.ts):
// the Connect route and the plain-gRPC fast path, both over the same attestation.
import type { SocketService } from '../workload-api/server.ts';
import type { WorkloadApiLogger } from '../workload-api/log.ts';
import {
  CREDENTIALS_SERVICE,
  Credentials,
  credentialsHandlers,
  type CredentialDoorDeps,
} from './grpc-door.ts';
import { serveFastGetCredential } from './grpc-fast.ts';

export interface CredentialSocketOptions extends CredentialDoorDeps {
  readonly log: WorkloadApiLogger;
  /** Largest request message (the socket server's readMaxBytes). Default 64 KiB. */
  readonly readMaxBytes?: number;
  /** Serve plain gRPC calls directly (default true); false: every call through Connect. */
  readonly fastPath?: boolean;
}

export function credentialSocketService(o: CredentialSocketOptions): SocketService {
  const deps = { ...o, readMaxBytes: o.readMaxBytes ?? 64 * 1024 };
  return {
    typeName: CREDENTIALS_SERVICE,
    register: (router) => router.service(Credentials, credentialsHandlers(o)),
    ...(o.fastPath === false
      ? {}
      : { fast: (stream, headers, peer) => serveFastGetCredential(deps, stream, headers, peer) }),
  };
}
