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
import type { AccessRevisionStore, AccessStore } from './ports/access.ts';
import type { LeaseStore } from './ports/leases.ts';
import type { SecretStore } from './ports/secrets.ts';
import type { StsStore } from './ports/sts.ts';
import type { PostureStore } from './ports/posture.ts';
import type { AuditEvent, AuditRecord } from '../core/audit.ts';
import type { Authority, AuthorityKind, AuthorityStatus } from '../core/authority.ts';
import type { Bundle } from '../core/bundle.ts';
import type { Entry } from '../core/entry.ts';
import type { FederationRelationship, FederationStatus } from '../core/federation.ts';
import type { AttestedNode } from '../core/node.ts';
import type { Selector } from '../core/selector.ts';

// The ports of the access layer and the token exchange, each in its own file.
export type * from './ports/access.ts';
export type * from './ports/leases.ts';
export type * from './ports/secrets.ts';
export type * from './ports/sts.ts';
export type * from './ports/posture.ts';

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
  /**
   * Compare-and-set of the selectors (a server-side refresh of cloud attributes): sets `next` and
   * `updatedAt` only when the node exists, is not banned and its selectors are still exactly
   * `expected` (same order). Returns the updated node, or null when any of those does not hold —
   * re-attested, banned or refreshed by another server meanwhile. One statement: of concurrent
   * callers with the same `expected`, one succeeds.
   */
  replaceSelectors(
    spiffeId: string,
    expected: readonly Selector[],
    next: readonly Selector[],
    updatedAt: number,
  ): Promise<AttestedNode | null>;
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
  readonly posture: PostureStore;
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
