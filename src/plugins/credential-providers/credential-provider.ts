// A credential provider turns an allowed access decision into a credential for the server
// workload: one folder per type holding its config schema and factory, listed in catalog.ts.
// Providers never read files, the environment or the datastore themselves: the broker hands them
// narrow ports (secrets by name, SVID and token minting, leases, HTTP, a clock).
import type { z } from 'zod';
import type {
  AccessClient,
  Credential,
  CredentialProviderRecord,
  Lease,
  ServerWorkload,
} from '../../core/access.ts';

/** Reads the current version of a secret from the secret store (server/broker). */
export interface SecretReader {
  /** The plaintext; NotFoundError naming the secret when it does not exist. */
  read(name: string): Promise<Uint8Array>;
}

/** Signing the broker offers providers (server/svid): always for the client being served. */
export interface CredentialMinting {
  /** A JWT-SVID of `spiffeId` for `audience`; ttl in seconds (capped by the server). */
  jwtSvid(
    spiffeId: string,
    audience: readonly string[],
    ttlSeconds: number,
  ): Promise<{ token: string; expiresAt: number }>;
  /** An RFC 9068 access token from Tessera's token service, subject `spiffeId`. */
  accessToken(
    spiffeId: string,
    audience: string,
    scopes: readonly string[],
    ttlSeconds: number,
  ): Promise<{ token: string; expiresAt: number }>;
}

/** Leases of dynamic credentials, kept in the datastore (server/broker/leases). */
export interface LeasePort {
  /**
   * Records the lease (state `creating`) BEFORE the credential is made, so a crash in between
   * leaves a record the sweeper ends.
   */
  record(lease: Lease): Promise<void>;
  /**
   * Marks the lease live once the credential exists. False when it was revoked meanwhile: the
   * provider then undoes what it made (its own endLease) and fails the release.
   */
  activate(leaseId: string): Promise<boolean>;
}

export interface CredentialRequest {
  readonly client: AccessClient;
  readonly server: ServerWorkload;
  /** The policy that allowed it (lease bookkeeping). */
  readonly policy: string;
  /** The agent it is released through ("" for none). */
  readonly agent: string;
  readonly correlationId: string;
}

export interface CredentialProvider {
  readonly type: string;
  readonly name: string;
  /**
   * Releases a credential. Errors: FailedPreconditionError for a misconfiguration (missing
   * secret, wrong secret shape), UnavailableError when an upstream (token endpoint, database)
   * cannot be reached or refuses — naming the upstream and its error code, never a secret.
   */
  release(req: CredentialRequest): Promise<Credential>;
  /** Ends a lease this provider created (drops the role). Idempotent; absent when no leases. */
  endLease?(lease: Lease): Promise<void>;
  /** Releases connections and timers. */
  close?(): Promise<void>;
}

/** What the broker hands every provider. */
export interface CredentialProviderDeps {
  readonly secrets: SecretReader;
  readonly minting: CredentialMinting;
  readonly leases: LeasePort;
  readonly now: () => number;
  /** For token endpoints; tests pass one bound to 127.0.0.1. */
  readonly fetch: typeof fetch;
}

/** One type of credential provider: its config schema and factory. */
export interface CredentialProviderPlugin<S extends z.ZodType = z.ZodType> {
  readonly type: string;
  /** Validates `config` of a CredentialProviderRecord (snake_case keys, unknown keys refused). */
  readonly schema: S;
  /** Names of the secrets a config refers to (checked to exist when the provider is created). */
  secretsOf(config: z.output<S>): string[];
  create(
    record: CredentialProviderRecord,
    config: z.output<S>,
    deps: CredentialProviderDeps,
  ): CredentialProvider;
}
