// Store ports, one per aggregate. Implementations: SQLite (node:sqlite, embedded default) and
// PostgreSQL (pg), both through Kysely; one conformance suite (conformance.ts) runs against both.
//
// Rules every implementation keeps:
// - Every mutation of entries and nodes appends a change event in the same transaction.
// - A committed write to a followed aggregate is announced (CommitNotifications) after commit.
// - Invariants spanning rows are enforced by the database (unique indexes, DELETE ... RETURNING,
//   row locks), never by memory, so several servers can share one PostgreSQL.
// - Driver errors are mapped: unique violation → AlreadyExistsError; connection failures →
//   UnavailableError; everything else → TesseraError('internal') with the cause attached.
import type {
  AccessPolicy,
  CredentialProviderRecord,
  Lease,
  LeaseScope,
  ServerWorkload,
} from '../core/access.ts';
import type { AuditEvent, AuditRecord } from '../core/audit.ts';
import type { Authority, AuthorityKind, AuthorityStatus } from '../core/authority.ts';
import type { Bundle } from '../core/bundle.ts';
import type { Entry } from '../core/entry.ts';
import type { FederationRelationship, FederationStatus } from '../core/federation.ts';
import type { AttestedNode } from '../core/node.ts';
import type { Selector } from '../core/selector.ts';

export interface Page<T> {
  readonly items: T[];
  /** Opaque; "" when there are no more. */
  readonly nextPageToken: string;
}

export interface EntryFilter {
  spiffeId?: string;
  parentId?: string;
  /** Entries whose selector set contains this selector. */
  selector?: Selector;
}

export interface EntryStore {
  /** Inserts; AlreadyExistsError when an entry with the same spiffe_id, parent_id and selector set exists. */
  create(entry: Entry): Promise<Entry>;
  /**
   * Bulk insert (imports, benchmarks): all or nothing, one change event per entry, entries kept
   * as given (revision included). AlreadyExistsError on any duplicate.
   */
  createMany(entries: readonly Entry[]): Promise<void>;
  /** Replaces every field but id and createdAt; bumps revision. NotFoundError when missing. */
  update(entry: Omit<Entry, 'revision'>): Promise<Entry>;
  /** NotFoundError when missing. Returns the deleted entry. */
  delete(id: string): Promise<Entry>;
  get(id: string): Promise<Entry | null>;
  /** Ordered by id. pageSize 1..1000. */
  list(filter: EntryFilter, pageSize: number, pageToken: string): Promise<Page<Entry>>;
  count(): Promise<number>;
}

export type ChangeKind = 'entry' | 'node';
export type ChangeOp = 'create' | 'update' | 'delete';

export interface ChangeEvent {
  /** Increasing but NOT necessarily contiguous (concurrent transactions may commit out of order). */
  readonly id: number;
  readonly kind: ChangeKind;
  /** Entry id or node SPIFFE ID. */
  readonly targetId: string;
  readonly op: ChangeOp;
  readonly createdAt: number;
}

export interface ChangeFeed {
  /** Events with id > afterId, ascending, at most `limit`. */
  since(afterId: number, limit: number): Promise<ChangeEvent[]>;
  /** The events with exactly these ids that now exist (to fill gaps seen earlier). */
  byIds(ids: readonly number[]): Promise<ChangeEvent[]>;
  /** Highest event id, 0 when none. */
  latestId(): Promise<number>;
  /** Deletes events created before `before` (epoch ms). Returns the count. */
  prune(before: number): Promise<number>;
}

export interface NodeFilter {
  banned?: boolean;
  attestationType?: string;
}

export interface NodeStore {
  /** Inserts or replaces the node record (re-attestation replaces). */
  upsert(node: AttestedNode): Promise<AttestedNode>;
  get(spiffeId: string): Promise<AttestedNode | null>;
  list(filter: NodeFilter, pageSize: number, pageToken: string): Promise<Page<AttestedNode>>;
  /** Partial update of mutable fields; NotFoundError when missing. */
  update(
    spiffeId: string,
    patch: Partial<
      Pick<
        AttestedNode,
        'serialNumber' | 'newSerialNumber' | 'expiresAt' | 'selectors' | 'banned' | 'updatedAt'
      >
    >,
  ): Promise<AttestedNode>;
  /** Removes the node (evict); NotFoundError when missing. */
  delete(spiffeId: string): Promise<AttestedNode>;
  count(): Promise<number>;
}

export interface JoinTokenRecord {
  /** sha256 hex of the token: the token itself is never stored. */
  readonly tokenHash: string;
  /** SPIFFE ID to give the agent, or "" for the default join_token/<id> form. */
  readonly spiffeId: string;
  readonly expiresAt: number;
  readonly createdAt: number;
}

export interface JoinTokenStore {
  create(token: JoinTokenRecord): Promise<void>;
  /**
   * Atomically deletes and returns the unexpired token with this hash, or null. Single use is
   * enforced here: of two concurrent callers exactly one gets the record.
   */
  consume(tokenHash: string, now: number): Promise<JoinTokenRecord | null>;
  /**
   * Whether an unexpired token exists whose hash starts with `hashPrefix` (lowercase hex, the
   * default agent ID's last segment) or whose custom SPIFFE ID is `spiffeId`.
   */
  pendingExists(
    match: { hashPrefix: string } | { spiffeId: string },
    now: number,
  ): Promise<boolean>;
  pruneExpired(now: number): Promise<number>;
}

/** Revoked access tokens (RFC 7009), by `jti`, kept until the token would have expired anyway. */
export interface RevokedTokenStore {
  /** Records the revocation; revoking an already revoked jti is a no-op (the first record stays). */
  revoke(jti: string, expiresAt: number, revokedAt: number): Promise<void>;
  /** A read of the database every time (no cache), so every server sees a revocation at once. */
  isRevoked(jti: string): Promise<boolean>;
  /** Deletes records whose token expired at or before `now`. Returns the count. */
  pruneExpired(now: number): Promise<number>;
}

/**
 * DPoP proof `jti`s seen at the token endpoint (RFC 9449 §11.1), kept until the proof could no
 * longer pass the freshness check anyway. Single use is enforced by the database (a unique key),
 * so a proof replayed to another server sharing the database is refused too.
 */
export interface DpopProofStore {
  /**
   * Records the key; true when it was not seen before (or its earlier record had expired by
   * `now`), false when it is already recorded — of concurrent callers exactly one gets true.
   */
  record(jti: string, expiresAt: number, now: number): Promise<boolean>;
  /** Deletes records that expired at or before `now`. Returns the count. */
  pruneExpired(now: number): Promise<number>;
}

export interface BundleStore {
  get(trustDomain: string): Promise<Bundle | null>;
  list(): Promise<Bundle[]>;
  /**
   * Read-modify-write under a row lock. `fn` receives the current bundle (or an empty one) and
   * returns the new content; when it differs, the sequence is bumped and it is stored. Returns
   * the stored bundle.
   */
  mutate(trustDomain: string, fn: (current: Bundle) => Bundle): Promise<Bundle>;
  /** Stores as given, sequence included (federated bundles). */
  put(bundle: Bundle): Promise<void>;
  delete(trustDomain: string): Promise<boolean>;
  /**
   * Stores as given unless the stored bundle has a higher sequence (federated bundles: a fetched
   * bundle never replaces a newer one). Atomic, also across servers. Returns whether it stored.
   */
  putIfNotOlder(bundle: Bundle): Promise<boolean>;
}

export interface AuthorityStore {
  insert(a: Authority): Promise<void>;
  list(filter: { serverId?: string; kind?: AuthorityKind }): Promise<Authority[]>;
  get(kind: AuthorityKind, id: string): Promise<Authority | null>;
  setStatus(kind: AuthorityKind, id: string, status: AuthorityStatus): Promise<void>;
  setTainted(kind: AuthorityKind, id: string): Promise<void>;
  delete(kind: AuthorityKind, id: string): Promise<void>;
}

/** Where one key this server generated stands; see KeyJournalStore. */
export type KeyJournalState = 'pending' | 'committed' | 'retired';

export interface KeyJournalRecord {
  readonly serverId: string;
  readonly keyRef: string;
  readonly state: KeyJournalState;
  readonly updatedAt: number;
}

/**
 * What a server did with each key it generated: the only ground for deleting a key file.
 * `pending` is committed before the key is generated, `committed` in the transaction that
 * records its authority, `retired` in the transaction that removes the authority (pruned past
 * its life, revoked, or a replaced prepared one). A key without a record — another server's, or
 * one this datastore never heard of — is never deleted.
 */
export interface KeyJournalStore {
  /** Inserts or replaces the record of (serverId, keyRef). */
  set(serverId: string, keyRef: string, state: KeyJournalState, now: number): Promise<void>;
  /** This server's records, by key ref. */
  list(serverId: string): Promise<KeyJournalRecord[]>;
  /** Forgets the record once its key is gone; a missing record is not an error. */
  delete(serverId: string, keyRef: string): Promise<void>;
}

export interface AuditFilter {
  afterSeq?: number;
  action?: string;
  actor?: string;
  /** Records of one request (e.g. the three records of an access: request, authorization, credential). */
  correlationId?: string;
}

export interface AuditStore {
  /** Appends with the next seq and the hash chained to the previous record, under a lock. */
  append(event: AuditEvent): Promise<AuditRecord>;
  /** Appends several events in order, chained, in one transaction (group commit). */
  appendMany(events: readonly AuditEvent[]): Promise<AuditRecord[]>;
  /** Ascending by seq. */
  list(filter: AuditFilter, limit: number): Promise<AuditRecord[]>;
  /** Most recent first. */
  tail(limit: number): Promise<AuditRecord[]>;
  /**
   * The recorded head of the chain (seq and hash of the last record appended; seq 0 and
   * GENESIS_HASH before any). Kept apart from the rows, so a verifier can tell a truncated log
   * from a short one.
   */
  head(): Promise<{ seq: number; hash: string }>;
}

/** SPIFFE federation relationships, one per foreign trust domain, with their fetch status. */
export interface FederationStore {
  /** Inserts; AlreadyExistsError when a relationship with this trust domain exists. */
  create(r: FederationRelationship): Promise<FederationRelationship>;
  get(trustDomain: string): Promise<FederationRelationship | null>;
  /** Ordered by trust domain. At most `limit` (1..100000). */
  list(limit: number): Promise<FederationRelationship[]>;
  /**
   * Replaces endpoint URL, profile, endpoint SPIFFE ID, source and updatedAt; keeps createdAt and
   * the fetch status. NotFoundError when missing.
   */
  update(r: Omit<FederationRelationship, 'createdAt' | 'status'>): Promise<FederationRelationship>;
  /** NotFoundError when missing. Returns the deleted relationship. */
  delete(trustDomain: string): Promise<FederationRelationship>;
  /** Records a fetch outcome; false when the relationship no longer exists. */
  setStatus(trustDomain: string, status: FederationStatus): Promise<boolean>;
}

/** A secret of the secret store (docs/access.md): its name and which version is current. */
export interface SecretRecord {
  readonly name: string;
  readonly currentVersion: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * One version of a secret, envelope-encrypted (src/crypto/secrets/envelope.ts): only ciphertext,
 * its nonce and the wrapped data key are stored — never the value or the data key in the clear.
 */
export interface SecretVersionRecord {
  readonly name: string;
  readonly version: number;
  /** AES-256-GCM ciphertext with its tag. */
  readonly ciphertext: Uint8Array;
  readonly nonce: Uint8Array;
  /** The data key wrapped by KEK `kekId`. */
  readonly wrappedKey: Uint8Array;
  readonly kekId: string;
  /** Plaintext size in bytes. */
  readonly size: number;
  readonly createdAt: number;
}

/**
 * Where a key-encryption key stands. `pending`: recorded before its key exists and while data
 * keys are re-wrapped under it (checkValue "" until the key is durable); `active`: wraps new data
 * keys (at most one); `retired`: replaced, its key destroyed once no version refers to it.
 */
export type KekState = 'pending' | 'active' | 'retired';

export interface KekRecord {
  readonly id: string;
  readonly state: KekState;
  /**
   * The server that created it (its id): only that server may roll back its pending KEK; a
   * rotation in progress on another server is not touched.
   */
  readonly owner: string;
  /** The KEK manager's check value (verify() compares it); "" while pending and not yet made. */
  readonly checkValue: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A version to add: its number must be the secret's current version + 1 (1 for a new secret). */
export type NewSecretVersion = SecretVersionRecord;

/**
 * Secrets, their versions and the KEK records. Every mutation announces the `access` topic.
 * Versions are added with the current pointer in one transaction, so a crash leaves a secret at
 * exactly its old or its new version.
 */
export interface SecretStore {
  get(name: string): Promise<SecretRecord | null>;
  /** Ordered by name. At most `limit` (1..100000). */
  list(limit: number): Promise<SecretRecord[]>;
  /** Ascending by version; [] when the secret does not exist. */
  versions(name: string): Promise<SecretVersionRecord[]>;
  /** The current version's row, or null when the secret does not exist. */
  current(name: string): Promise<SecretVersionRecord | null>;
  /**
   * Adds `v` and makes it current, atomically; keeps the newest `keep` versions and deletes older
   * ones. FailedPreconditionError (`conflict`) when the current version is no longer
   * v.version - 1 (a concurrent writer: re-read and retry) or when KEK v.kekId is not `active`
   * (a KEK rotation switched it: wrap again under the new one).
   */
  putVersion(v: NewSecretVersion, keep: number): Promise<SecretRecord>;
  /** Deletes the secret and all its versions. NotFoundError when missing. */
  delete(name: string): Promise<SecretRecord>;
  /** Versions whose data key is wrapped by KEK `kekId`, at most `limit`, by (name, version). */
  wrappedBy(kekId: string, limit: number): Promise<SecretVersionRecord[]>;
  /** How many versions have their data key wrapped by KEK `kekId`. */
  countWrappedBy(kekId: string): Promise<number>;
  /**
   * Replaces the wrapped data key of (name, version) if it is still wrapped by `fromKek`;
   * false when it is not (deleted, or re-wrapped already).
   */
  rewrap(
    name: string,
    version: number,
    fromKek: string,
    toKek: string,
    wrappedKey: Uint8Array,
  ): Promise<boolean>;
  /** Ordered by creation time, then id. */
  listKeks(): Promise<KekRecord[]>;
  /** AlreadyExistsError when the id exists or (state active) another KEK is active. */
  addKek(k: KekRecord): Promise<void>;
  /** Sets state and check value; NotFoundError when missing. */
  updateKek(id: string, state: KekState, checkValue: string, now: number): Promise<void>;
  /** Forgets the record; FailedPreconditionError while a version refers to it. */
  deleteKek(id: string): Promise<void>;
}

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
 * Where a lease stands. `creating`: recorded before its credential exists (a crash here leaves a
 * lease whose role may or may not exist); `active`: the credential was handed out; `ending`:
 * claimed by one server to end (its provider's endLease runs); `ended`: gone, kept for history
 * until pruned.
 */
export type LeaseState = 'creating' | 'active' | 'ending' | 'ended';

export interface LeaseRecord extends Lease {
  readonly state: LeaseState;
  /** When it entered `ending` (the claim); 0 before. */
  readonly claimedAt: number;
  /** Why it is ending or ended; "" before. */
  readonly endReason: string;
  /** When it was ended; null before. */
  readonly endedAt: number | null;
}

/**
 * Leases of dynamic credentials (docs/access.md, "Leases"). Claiming a lease to end it is one
 * conditional UPDATE, so of several servers sharing the database exactly one ends it.
 */
export interface LeaseStore {
  /** Inserts in state `creating`; AlreadyExistsError when the id exists. */
  create(lease: Lease): Promise<void>;
  /** `creating` → `active`; false when the lease is not `creating` (claimed to end meanwhile). */
  activate(id: string): Promise<boolean>;
  get(id: string): Promise<LeaseRecord | null>;
  /**
   * Leases in `creating` or `active` matching every field of `scope` (at least one set:
   * InvalidArgumentError otherwise), oldest first, at most `limit` (1..1000).
   */
  listMatching(scope: LeaseScope, limit: number): Promise<LeaseRecord[]>;
  /**
   * Leases due to be ended, oldest expiry first, at most `limit` (1..1000): `creating` or
   * `active` with expiresAt <= now; `creating` created at or before `creatingBefore` (abandoned
   * mid-creation); `ending` claimed at or before `claimedBefore` (its ender died or failed).
   */
  listDue(
    due: { now: number; creatingBefore: number; claimedBefore: number },
    limit: number,
  ): Promise<LeaseRecord[]>;
  /**
   * Atomically moves the lease to `ending` (claimedAt = now, endReason = reason) when it is
   * `creating`/`active`, or `ending` with claimedAt <= claimedBefore; returns it, or null when
   * it is missing, ended, or claimed by someone else recently.
   */
  claim(
    id: string,
    now: number,
    reason: string,
    claimedBefore: number,
  ): Promise<LeaseRecord | null>;
  /** `ending` → `ended` (endedAt = now); false when not `ending`. */
  markEnded(id: string, now: number): Promise<boolean>;
  /** Deletes `ended` leases ended at or before `before`. Returns the count. */
  pruneEnded(before: number): Promise<number>;
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

export interface StoreAggregates {
  readonly entries: EntryStore;
  readonly nodes: NodeStore;
  readonly joinTokens: JoinTokenStore;
  readonly revokedTokens: RevokedTokenStore;
  readonly bundles: BundleStore;
  readonly authorities: AuthorityStore;
  readonly keyJournal: KeyJournalStore;
  readonly audit: AuditStore;
  readonly changes: ChangeFeed;
  readonly sts: StsStore;
  readonly federations: FederationStore;
  readonly dpopProofs: DpopProofStore;
  readonly secrets: SecretStore;
  readonly access: AccessStore;
  readonly leases: LeaseStore;
  readonly accessRevision: AccessRevisionStore;
}

/**
 * What a committed write announces: one topic per aggregate that other parts of the server, or
 * other servers sharing the database, follow. `changes`: the change feed (entries and nodes).
 * `bundles`: a trust bundle changed (an authority was published, activated, tainted or removed).
 * `access`: server workloads, credential providers, access policies or secrets changed (released
 * credentials cached by agents must be re-checked).
 * A new topic is announced by the aggregate's writes (`announce` in sql/commit-notifier.ts).
 */
export type CommitTopic = 'changes' | 'bundles' | 'access';
export const COMMIT_TOPICS: readonly CommitTopic[] = ['changes', 'bundles', 'access'];

/**
 * Why a listener is called: `local` — a transaction of this store committed; `remote` — another
 * store sharing the database committed (PostgreSQL LISTEN/NOTIFY); `resync` — the listening
 * connection was (re)established, so announcements may have been missed.
 */
export type CommitSource = 'local' | 'remote' | 'resync';

export type CommitListener = (topic: CommitTopic, source: CommitSource) => void;

/**
 * "Read now" signals. A listener is called after a write to its topic commits — never before,
 * never for a rollback. Only a hint, never the data: it may come late, twice, or (across servers,
 * while the database is unreachable) not at all, so readers keep their own cursor and still poll
 * as a fallback. Listeners are called synchronously and must not throw (a throw is dropped: the
 * write has committed and its caller must see success).
 */
export interface CommitNotifications {
  /** Returns unsubscribe. */
  subscribe(topic: CommitTopic, listener: CommitListener): () => void;
}

export interface Store extends StoreAggregates {
  readonly dialect: 'sqlite' | 'postgres';
  /** Commits to followed aggregates, of this store and (PostgreSQL) of other servers. */
  readonly notifications: CommitNotifications;
  /** Runs fn in one transaction; rolled back when fn throws. Nested calls are not supported. */
  transaction<T>(fn: (tx: StoreAggregates) => Promise<T>): Promise<T>;
  /** Cheap round trip; UnavailableError when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where an STS issuer's verification keys come from. */
export type StsKeySource = 'jwks' | 'discovery';

/** An external OIDC issuer registered through the admin API (docs/token-exchange.md). */
export interface StsIssuerRecord {
  /** Compared byte for byte with the subject token's `iss`; the primary key. */
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly keySource: StsKeySource;
  /** The JWK Set document (JSON text) for `jwks`; "" for `discovery`. */
  readonly jwks: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A trust policy created through the admin API (docs/trust-policies.md); stored uncompiled. */
export interface TrustPolicyRecord {
  /** Unique; the primary key. */
  readonly name: string;
  readonly issuer: string;
  readonly condition: string;
  readonly attributeMapping: Readonly<Record<string, string>>;
  /** SPIFFE ID template, or "" for an access-token policy. */
  readonly spiffeId: string;
  /** Access-token audience, or "" for a SPIFFE ID policy. */
  readonly accessTokenAudience: string;
  readonly accessTokenScopes: readonly string[];
  /** Access-token policies: a DPoP proof is required (RFC 9449). */
  readonly accessTokenRequireDpop: boolean;
  /** Access-token policies: its tokens may call /introspect and /revoke. */
  readonly introspectionClient: boolean;
  readonly ttl: string;
  /** The template it was made from (github, gitlab, kubernetes), or "". */
  readonly template: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * STS issuers and trust policies. Every mutation bumps one revision counter in the same
 * transaction, so servers sharing the database notice a change with one cheap read.
 */
export interface StsStore {
  /** AlreadyExistsError when the issuer is registered. */
  addIssuer(r: StsIssuerRecord): Promise<StsIssuerRecord>;
  getIssuer(issuer: string): Promise<StsIssuerRecord | null>;
  /** Ordered by issuer. */
  listIssuers(): Promise<StsIssuerRecord[]>;
  /**
   * NotFoundError when missing; FailedPreconditionError, naming them, while trust policies
   * refer to it.
   */
  removeIssuer(issuer: string): Promise<StsIssuerRecord>;
  /** AlreadyExistsError when a policy with this name exists. */
  createPolicy(r: TrustPolicyRecord): Promise<TrustPolicyRecord>;
  getPolicy(name: string): Promise<TrustPolicyRecord | null>;
  /** Ordered by creation time, then name (the order the exchange tries them in). */
  listPolicies(): Promise<TrustPolicyRecord[]>;
  /** NotFoundError when missing. Returns the deleted policy. */
  deletePolicy(name: string): Promise<TrustPolicyRecord>;
  /** Increases with every mutation; 0 before the first. */
  revision(): Promise<number>;
}
