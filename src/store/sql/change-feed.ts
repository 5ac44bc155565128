// The change feed: one row per entry/node mutation, written in the mutation's transaction, so a
// reader that sees an entry change also sees (or will see) its event, and a rollback drops both.
// Appending announces the `changes` topic, delivered to followers once the transaction commits.
import type { ChangeEvent, ChangeFeed, ChangeKind, ChangeOp } from '../types.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { type Db, type SqlContext, chunks } from './dialect.ts';
import { checkLimit } from './codec.ts';

export interface ChangeInput {
  readonly kind: ChangeKind;
  readonly targetId: string;
  readonly op: ChangeOp;
}

/** Appends events in the given order (ids increase with it). Call inside the mutation's transaction. */
export async function appendChanges(
  ctx: SqlContext,
  db: Db,
  events: readonly ChangeInput[],
): Promise<void> {
  const now = ctx.clock.now();
  for (const part of chunks(events, 4, ctx.dialect.maxParams)) {
    await db
      .insertInto('changes')
      .values(part.map((e) => ({ kind: e.kind, target_id: e.targetId, op: e.op, created_at: now })))
      .execute();
  }
  if (events.length > 0) await ctx.notifier.announce(db, 'changes');
}

interface ChangeRowOut {
  id: number;
  kind: string;
  target_id: string;
  op: string;
  created_at: number;
}

function toEvent(r: ChangeRowOut): ChangeEvent {
  return {
    id: Number(r.id),
    kind: r.kind as ChangeKind,
    targetId: r.target_id,
    op: r.op as ChangeOp,
    createdAt: Number(r.created_at),
  };
}

export function changeFeed(ctx: SqlContext): ChangeFeed {
  const { db } = ctx;
  return {
    async since(afterId, limit) {
      checkLimit('limit', limit);
      const rows = await db
        .selectFrom('changes')
        .selectAll()
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map(toEvent);
    },
    async byIds(ids) {
      if (ids.some((id) => !Number.isSafeInteger(id))) {
        throw new InvalidArgumentError('ids: must be integers');
      }
      const out: ChangeEvent[] = [];
      for (const part of chunks([...new Set(ids)], 1, ctx.dialect.maxParams)) {
        const rows = await db.selectFrom('changes').selectAll().where('id', 'in', part).execute();
        out.push(...rows.map(toEvent));
      }
      return out.sort((a, b) => a.id - b.id);
    },
    async latestId() {
      const row = await db
        .selectFrom('changes')
        .select((eb) => eb.fn.max('id').as('max'))
        .executeTakeFirst();
      return row?.max == null ? 0 : Number(row.max);
    },
    async prune(before) {
      const r = await db.deleteFrom('changes').where('created_at', '<', before).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
