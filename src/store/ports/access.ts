// Store ports of the access model (docs/access.md): server workloads, credential providers,
// access policies, their import, and the access revision agents compare.
import type { AccessPolicy, CredentialProviderRecord, ServerWorkload } from '../../core/access.ts';

/** An access document's objects (docs/access.md), each created or replaced by name. */
export interface AccessDocumentRecords {
  readonly serverWorkloads: readonly ServerWorkload[];
  readonly credentialProviders: readonly CredentialProviderRecord[];
  readonly accessPolicies: readonly AccessPolicy[];
}

/** Names of the objects an import replaced (they existed before); the others were created. */
export interface AccessImportResult {
  readonly replaced: {
    readonly serverWorkloads: readonly string[];
    readonly credentialProviders: readonly string[];
    readonly accessPolicies: readonly string[];
  };
}

export interface AccessPolicyFilter {
  /** Only the policies for this server workload. */
  readonly server?: string;
}

/**
 * The access model (src/core/access.ts): server workloads, credential providers and access
 * policies, by name. Referential integrity is kept in the writing transaction under row locks
 * (several servers share PostgreSQL): a policy naming an unknown server workload or provider is
 * refused with NotFoundError naming it; deleting a server workload or provider that policies
 * refer to is refused with FailedPreconditionError naming them. Every mutation announces the
 * `access` commit topic in its transaction. Lists are ordered by name.
 */
export interface AccessStore {
  /** AlreadyExistsError naming it when the name is taken. */
  createServerWorkload(w: ServerWorkload): Promise<ServerWorkload>;
  getServerWorkload(name: string): Promise<ServerWorkload | null>;
  listServerWorkloads(): Promise<ServerWorkload[]>;
  /** Replaces every field but name and createdAt. NotFoundError when missing. */
  updateServerWorkload(w: ServerWorkload): Promise<ServerWorkload>;
  /** NotFoundError when missing; FailedPreconditionError while policies refer to it. */
  deleteServerWorkload(name: string): Promise<ServerWorkload>;

  /** AlreadyExistsError naming it when the name is taken. Providers have no update. */
  createCredentialProvider(p: CredentialProviderRecord): Promise<CredentialProviderRecord>;
  getCredentialProvider(name: string): Promise<CredentialProviderRecord | null>;
  listCredentialProviders(): Promise<CredentialProviderRecord[]>;
  /** NotFoundError when missing; FailedPreconditionError while policies refer to it. */
  deleteCredentialProvider(name: string): Promise<CredentialProviderRecord>;

  /** AlreadyExistsError; NotFoundError naming an unknown server workload or provider. */
  createAccessPolicy(p: AccessPolicy): Promise<AccessPolicy>;
  getAccessPolicy(name: string): Promise<AccessPolicy | null>;
  listAccessPolicies(filter?: AccessPolicyFilter): Promise<AccessPolicy[]>;
  /** Replaces every field but name and createdAt; references checked as on create. */
  updateAccessPolicy(p: AccessPolicy): Promise<AccessPolicy>;
  /** NotFoundError when missing. */
  deleteAccessPolicy(name: string): Promise<AccessPolicy>;

  /**
   * Creates or replaces every object (replacing keeps createdAt), all in one transaction: any
   * error (an unknown reference, a duplicate name within a kind) stores nothing.
   */
  importDocument(doc: AccessDocumentRecords): Promise<AccessImportResult>;
}

/**
 * The access revision agents compare to drop cached credentials (sync.proto access_revision):
 * one counter in the database, bumped in the same transaction as every write that announces the
 * `access` topic (sql/commit-notifier.ts), so every server sharing the database reports the same
 * value, and a missed notification is caught by reading one row.
 */
export interface AccessRevisionStore {
  /** The current value; positive. */
  current(): Promise<number>;
  /** Increments it, announcing `access` (a revocation with no other write to announce). */
  bump(): Promise<number>;
}
