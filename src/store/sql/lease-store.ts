// Leases of dynamic credentials. The state moves creating → active → ending → ended, every step
// one conditional UPDATE ... RETURNING, so two servers sharing the database never both claim a
// lease to end it (the database decides, not memory).
import type { Lease, LeaseScope } from '../../core/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { LeaseRecord, LeaseState, LeaseStore } from '../types.ts';
import { checkLimit } from './codec.ts';
import type { SqlContext } from './dialect.ts';
import type { LeaseRow } from './schema.ts';

const MAX_LIMIT = 1000;
const SCOPE_COLUMNS = ['policy', 'provider', 'server', 'client', 'agent'] as const;

function toRow(l: Lease): LeaseRow {
  return {
    id: l.id,
    provider: l.provider,
    server: l.server,
    client: l.client,
    policy: l.policy,
    agent: l.agent,
    data: JSON.stringify(l.data),
    state: 'creating',
    expires_at: l.expiresAt,
    created_at: l.createdAt,
    claimed_at: 0,
    end_reason: '',
    ended_at: null,
  };
}

function fromRow(r: LeaseRow): LeaseRecord {
  return {
    id: r.id,
    provider: r.provider,
    server: r.server,
    client: r.client,
    policy: r.policy,
    agent: r.agent,
    data: JSON.parse(r.data) as Record<string, string>,
    state: r.state as LeaseState,
    expiresAt: Number(r.expires_at),
    createdAt: Number(r.created_at),
    claimedAt: Number(r.claimed_at),
    endReason: r.end_reason,
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
  };
}

export function leaseStore(ctx: SqlContext): LeaseStore {
  const { db } = ctx;
  return {
    async create(lease) {
      await db.insertInto('leases').values(toRow(lease)).execute();
    },
    async activate(id) {
      const r = await db
        .updateTable('leases')
        .set({ state: 'active' })
        .where('id', '=', id)
        .where('state', '=', 'creating')
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async get(id) {
      const row = await db.selectFrom('leases').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? null : fromRow(row);
    },
    async listMatching(scope: LeaseScope, limit) {
      checkLimit('limit', limit, MAX_LIMIT);
      const set = SCOPE_COLUMNS.filter((c) => scope[c] !== undefined);
      if (set.length === 0) {
        throw new InvalidArgumentError(
          'lease scope: at least one of policy, provider, server, client, agent is required',
        );
      }
      let q = db.selectFrom('leases').selectAll().where('state', 'in', ['creating', 'active']);
      for (const c of set) q = q.where(c, '=', scope[c] as string);
      const rows = await q.orderBy('created_at').orderBy('id').limit(limit).execute();
      return rows.map(fromRow);
    },
    async listDue(due, limit) {
      checkLimit('limit', limit, MAX_LIMIT);
      const rows = await db
        .selectFrom('leases')
        .selectAll()
        .where((eb) =>
          eb.or([
            eb.and([eb('state', 'in', ['creating', 'active']), eb('expires_at', '<=', due.now)]),
            eb.and([eb('state', '=', 'creating'), eb('created_at', '<=', due.creatingBefore)]),
            eb.and([eb('state', '=', 'ending'), eb('claimed_at', '<=', due.claimedBefore)]),
          ]),
        )
        .orderBy('expires_at')
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map(fromRow);
    },
    async claim(id, now, reason, claimedBefore) {
      const row = await db
        .updateTable('leases')
        .set({ state: 'ending', claimed_at: now, end_reason: reason })
        .where('id', '=', id)
        .where((eb) =>
          eb.or([
            eb('state', 'in', ['creating', 'active']),
            eb.and([eb('state', '=', 'ending'), eb('claimed_at', '<=', claimedBefore)]),
          ]),
        )
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : fromRow(row);
    },
    async markEnded(id, now) {
      const r = await db
        .updateTable('leases')
        .set({ state: 'ended', ended_at: now })
        .where('id', '=', id)
        .where('state', '=', 'ending')
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async pruneEnded(before) {
      const r = await db
        .deleteFrom('leases')
        .where('state', '=', 'ended')
        .where('ended_at', '<=', before)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
