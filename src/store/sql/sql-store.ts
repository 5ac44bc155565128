// Assembles the aggregates over one Kysely handle into a Store. Shared by both dialects: the
// dialect-specific parts arrive in SqlDialect.
import { sql } from 'kysely';
import type { Clock } from '../../core/clock.ts';
import type { Store, StoreAggregates } from '../types.ts';
import { type Db, type SqlContext, type SqlDialect } from './dialect.ts';
import { closedError, guarded, toStoreError } from './errors.ts';
import { entryStore } from './entry-store.ts';
import { nodeStore } from './node-store.ts';
import { joinTokenStore } from './join-token-store.ts';
import { revokedTokenStore } from './revoked-token-store.ts';
import { bundleStore } from './bundle-store.ts';
import { authorityStore } from './authority-store.ts';
import { keyJournalStore } from './key-journal-store.ts';
import { auditStore } from './audit-store.ts';
import { changeFeed } from './change-feed.ts';
import { stsStore } from './sts-store.ts';
import { federationStore } from './federation-store.ts';
import { dpopProofStore } from './dpop-proof-store.ts';
import { accessStore } from './access-store.ts';
import { leaseStore } from './lease-store.ts';
import { CommitNotifier } from './commit-notifier.ts';
import { secretStore } from './secret-store.ts';
import { accessRevisionStore } from './access-revision-store.ts';
import { postureStore } from './posture-store.ts';

export function sqlAggregates(ctx: SqlContext, isClosed: () => boolean): StoreAggregates {
  const g = <T extends object>(a: T) => guarded(a, ctx.dialect, isClosed);
  return Object.freeze({
    entries: g(entryStore(ctx)),
    nodes: g(nodeStore(ctx)),
    joinTokens: g(joinTokenStore(ctx)),
    revokedTokens: g(revokedTokenStore(ctx)),
    bundles: g(bundleStore(ctx)),
    authorities: g(authorityStore(ctx)),
    keyJournal: g(keyJournalStore(ctx)),
    audit: g(auditStore(ctx)),
    changes: g(changeFeed(ctx)),
    sts: g(stsStore(ctx)),
    federations: g(federationStore(ctx)),
    dpopProofs: g(dpopProofStore(ctx)),
    secrets: g(secretStore(ctx)),
    access: g(accessStore(ctx)),
    leases: g(leaseStore(ctx)),
    accessRevision: g(accessRevisionStore(ctx)),
    posture: g(postureStore(ctx)),
  });
}

export interface SqlStoreExtras {
  /** Cross-server announcements and their receiver (PostgreSQL); in-process only when absent. */
  readonly notifier?: CommitNotifier;
  /** Runs on close(), before the pool is destroyed (the PostgreSQL listener). */
  readonly onClose?: () => Promise<void>;
}

export function createSqlStore(
  db: Db,
  dialect: SqlDialect,
  clock: Clock,
  extras: SqlStoreExtras = {},
): Store {
  const notifier = extras.notifier ?? new CommitNotifier();
  const ctx: SqlContext = { db, dialect, clock, notifier };
  let closed = false;
  const isClosed = () => closed;
  const aggregates = sqlAggregates(ctx, isClosed);
  return Object.freeze({
    ...aggregates,
    dialect: dialect.name,
    notifications: { subscribe: notifier.subscribe.bind(notifier) },
    async transaction<T>(fn: (tx: StoreAggregates) => Promise<T>): Promise<T> {
      // Errors thrown by fn are the caller's and pass through as they are; only failures of
      // BEGIN/COMMIT themselves are driver errors to map.
      const own = { thrown: false };
      if (closed) throw closedError();
      try {
        return await notifier.transaction(db, async (trx) => {
          try {
            return await fn(sqlAggregates({ ...ctx, db: trx }, isClosed));
          } catch (e) {
            own.thrown = true;
            throw e;
          }
        });
      } catch (e) {
        throw own.thrown ? e : closed ? closedError() : toStoreError(e, dialect);
      }
    },
    async ping() {
      if (closed) throw closedError();
      try {
        await sql`select 1`.execute(db);
      } catch (e) {
        throw toStoreError(e, dialect);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await extras.onClose?.();
      } finally {
        await db.destroy();
      }
    },
  });
}
