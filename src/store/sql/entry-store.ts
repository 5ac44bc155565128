// Registration entries over Kysely. The database enforces uniqueness (entries_identity_uq), so
// two servers creating the same entry at once cannot both succeed.
import type { Entry } from '../../core/entry.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { EntryFilter, EntryStore } from '../types.ts';
import { type Db, type SqlContext, atomic, chunks, lockRows } from './dialect.ts';
import { appendChanges } from './change-feed.ts';
import { checkPageSize, decodePageToken, toPage } from './codec.ts';
import { fromEntryRow, selectorRows, toEntryRow } from './entry-rows.ts';
import type { EntryRow } from './schema.ts';

async function insertRows(ctx: SqlContext, db: Db, entries: readonly Entry[]): Promise<void> {
  const rows = entries.map(toEntryRow);
  // Parameters per row: every column of the row (counted, so a new column cannot overflow).
  const columns = rows[0] === undefined ? 1 : Object.keys(rows[0]).length;
  for (const part of chunks(rows, columns, ctx.dialect.maxParams)) {
    await db.insertInto('entries').values(part).execute();
  }
  await insertSelectors(ctx, db, entries);
}

async function insertSelectors(
  ctx: SqlContext,
  db: Db,
  entries: readonly Pick<Entry, 'id' | 'selectors'>[],
): Promise<void> {
  for (const part of chunks(entries.flatMap(selectorRows), 3, ctx.dialect.maxParams)) {
    await db.insertInto('entry_selectors').values(part).execute();
  }
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(`entry "${id}" not found`);
}

async function updateEntry(ctx: SqlContext, input: Omit<Entry, 'revision'>): Promise<Entry> {
  return atomic(ctx, async (db) => {
    const current = await lockRows(
      ctx,
      db.selectFrom('entries').select(['revision', 'created_at']).where('id', '=', input.id),
    ).executeTakeFirst();
    if (current === undefined) throw notFound(input.id);
    const next: Entry = {
      ...input,
      revision: Number(current.revision) + 1,
      createdAt: Number(current.created_at),
    };
    const { id: _id, created_at: _c, ...fields } = toEntryRow(next);
    await db.updateTable('entries').set(fields).where('id', '=', input.id).execute();
    await db.deleteFrom('entry_selectors').where('entry_id', '=', input.id).execute();
    await insertSelectors(ctx, db, [next]);
    await appendChanges(ctx, db, [{ kind: 'entry', targetId: input.id, op: 'update' }]);
    return fromEntryRow(toEntryRow(next));
  });
}

async function listEntries(
  ctx: SqlContext,
  filter: EntryFilter,
  pageSize: number,
  pageToken: string,
): Promise<{ items: Entry[]; nextPageToken: string }> {
  checkPageSize(pageSize);
  const after = decodePageToken(pageToken);
  let q = ctx.db.selectFrom('entries').selectAll();
  if (after !== null) q = q.where('id', '>', after);
  if (filter.spiffeId !== undefined) q = q.where('spiffe_id', '=', filter.spiffeId);
  if (filter.parentId !== undefined) q = q.where('parent_id', '=', filter.parentId);
  const sel = filter.selector;
  if (sel !== undefined) {
    q = q.where('id', 'in', (eb) =>
      eb
        .selectFrom('entry_selectors')
        .select('entry_id')
        .where('type', '=', sel.type)
        .where('value', '=', sel.value),
    );
  }
  const rows = await q
    .orderBy('id')
    .limit(pageSize + 1)
    .execute();
  return toPage(rows, pageSize, (r: EntryRow) => r.id, fromEntryRow);
}

export function entryStore(ctx: SqlContext): EntryStore {
  return {
    create: (entry) =>
      atomic(ctx, async (db) => {
        await insertRows(ctx, db, [entry]);
        await appendChanges(ctx, db, [{ kind: 'entry', targetId: entry.id, op: 'create' }]);
        return fromEntryRow(toEntryRow(entry));
      }),
    createMany: (entries) =>
      atomic(ctx, async (db) => {
        await insertRows(ctx, db, entries);
        const events = entries.map((e) => ({
          kind: 'entry' as const,
          targetId: e.id,
          op: 'create' as const,
        }));
        await appendChanges(ctx, db, events);
      }),
    update: (entry) => updateEntry(ctx, entry),
    delete: (id) =>
      atomic(ctx, async (db) => {
        const row = await db
          .deleteFrom('entries')
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirst();
        if (row === undefined) throw notFound(id);
        await appendChanges(ctx, db, [{ kind: 'entry', targetId: id, op: 'delete' }]);
        return fromEntryRow(row);
      }),
    async get(id) {
      const row = await ctx.db
        .selectFrom('entries')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row === undefined ? null : fromEntryRow(row);
    },
    list: (filter, pageSize, pageToken) => listEntries(ctx, filter, pageSize, pageToken),
    async count() {
      const row = await ctx.db
        .selectFrom('entries')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
