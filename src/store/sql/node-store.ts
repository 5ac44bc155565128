// Attested nodes over Kysely. Re-attestation replaces the record but keeps created_at, the time
// the node was first admitted.
import type { AttestedNode } from '../../core/node.ts';
import type { Selector } from '../../core/selector.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { NodeFilter, NodeStore } from '../types.ts';
import { type SqlContext, atomic, lockRows } from './dialect.ts';
import { appendChanges } from './change-feed.ts';
import {
  checkPageSize,
  decodePageToken,
  fromFlag,
  parseSelectorsJson,
  selectorsJson,
  toFlag,
  toPage,
} from './codec.ts';
import type { NodeRow } from './schema.ts';

type NodePatch = Parameters<NodeStore['update']>[1];

function toNodeRow(n: AttestedNode): NodeRow {
  return {
    spiffe_id: n.spiffeId,
    attestation_type: n.attestationType,
    serial_number: n.serialNumber,
    new_serial_number: n.newSerialNumber,
    expires_at: n.expiresAt,
    selectors: selectorsJson(n.selectors),
    banned: toFlag(n.banned),
    can_reattest: toFlag(n.canReattest),
    created_at: n.createdAt,
    updated_at: n.updatedAt,
  };
}

function fromNodeRow(r: NodeRow): AttestedNode {
  return {
    spiffeId: r.spiffe_id,
    attestationType: r.attestation_type,
    serialNumber: r.serial_number,
    newSerialNumber: r.new_serial_number,
    expiresAt: Number(r.expires_at),
    selectors: parseSelectorsJson(r.selectors),
    banned: fromFlag(r.banned),
    canReattest: fromFlag(r.can_reattest),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

const notFound = (id: string) => new NotFoundError(`node "${id}" not found`);

async function upsertNode(ctx: SqlContext, node: AttestedNode): Promise<AttestedNode> {
  return atomic(ctx, async (db) => {
    const existing = await lockRows(
      ctx,
      db.selectFrom('nodes').select('created_at').where('spiffe_id', '=', node.spiffeId),
    ).executeTakeFirst();
    const row = toNodeRow(node);
    const { spiffe_id: _s, created_at: _c, ...replace } = row;
    // ON CONFLICT keeps a concurrent first attestation of the same node from failing.
    const stored = await db
      .insertInto('nodes')
      .values(row)
      .onConflict((oc) => oc.column('spiffe_id').doUpdateSet(replace))
      .returningAll()
      .executeTakeFirstOrThrow();
    const op = existing === undefined ? 'create' : 'update';
    await appendChanges(ctx, db, [{ kind: 'node', targetId: node.spiffeId, op }]);
    return fromNodeRow(stored);
  });
}

function patchColumns(patch: NodePatch): Partial<NodeRow> {
  const set: Partial<NodeRow> = {};
  if (patch.serialNumber !== undefined) set.serial_number = patch.serialNumber;
  if (patch.newSerialNumber !== undefined) set.new_serial_number = patch.newSerialNumber;
  if (patch.expiresAt !== undefined) set.expires_at = patch.expiresAt;
  if (patch.selectors !== undefined) set.selectors = selectorsJson(patch.selectors);
  if (patch.banned !== undefined) set.banned = toFlag(patch.banned);
  if (patch.updatedAt !== undefined) set.updated_at = patch.updatedAt;
  return set;
}

async function updateNode(ctx: SqlContext, id: string, patch: NodePatch): Promise<AttestedNode> {
  const set = patchColumns(patch);
  if (Object.keys(set).length === 0) {
    const row = await ctx.db
      .selectFrom('nodes')
      .selectAll()
      .where('spiffe_id', '=', id)
      .executeTakeFirst();
    if (row === undefined) throw notFound(id);
    return fromNodeRow(row);
  }
  return atomic(ctx, async (db) => {
    const row = await db
      .updateTable('nodes')
      .set(set)
      .where('spiffe_id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) throw notFound(id);
    await appendChanges(ctx, db, [{ kind: 'node', targetId: id, op: 'update' }]);
    return fromNodeRow(row);
  });
}

async function replaceSelectors(
  ctx: SqlContext,
  id: string,
  expected: readonly Selector[],
  next: readonly Selector[],
  updatedAt: number,
): Promise<AttestedNode | null> {
  return atomic(ctx, async (db) => {
    // The WHERE is the compare: PostgreSQL re-checks it on the row a concurrent writer committed.
    const row = await db
      .updateTable('nodes')
      .set({ selectors: selectorsJson(next), updated_at: updatedAt })
      .where('spiffe_id', '=', id)
      .where('banned', '=', toFlag(false))
      .where('selectors', '=', selectorsJson(expected))
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) return null;
    await appendChanges(ctx, db, [{ kind: 'node', targetId: id, op: 'update' }]);
    return fromNodeRow(row);
  });
}

async function listNodes(
  ctx: SqlContext,
  filter: NodeFilter,
  pageSize: number,
  pageToken: string,
): Promise<{ items: AttestedNode[]; nextPageToken: string }> {
  checkPageSize(pageSize);
  const after = decodePageToken(pageToken);
  let q = ctx.db.selectFrom('nodes').selectAll();
  if (after !== null) q = q.where('spiffe_id', '>', after);
  if (filter.banned !== undefined) q = q.where('banned', '=', toFlag(filter.banned));
  if (filter.attestationType !== undefined) {
    q = q.where('attestation_type', '=', filter.attestationType);
  }
  const rows = await q
    .orderBy('spiffe_id')
    .limit(pageSize + 1)
    .execute();
  return toPage(rows, pageSize, (r: NodeRow) => r.spiffe_id, fromNodeRow);
}

export function nodeStore(ctx: SqlContext): NodeStore {
  return {
    upsert: (node) => upsertNode(ctx, node),
    async get(id) {
      const row = await ctx.db
        .selectFrom('nodes')
        .selectAll()
        .where('spiffe_id', '=', id)
        .executeTakeFirst();
      return row === undefined ? null : fromNodeRow(row);
    },
    list: (filter, pageSize, pageToken) => listNodes(ctx, filter, pageSize, pageToken),
    update: (id, patch) => updateNode(ctx, id, patch),
    replaceSelectors: (id, expected, next, updatedAt) =>
      replaceSelectors(ctx, id, expected, next, updatedAt),
    delete: (id) =>
      atomic(ctx, async (db) => {
        const row = await db
          .deleteFrom('nodes')
          .where('spiffe_id', '=', id)
          .returningAll()
          .executeTakeFirst();
        if (row === undefined) throw notFound(id);
        await appendChanges(ctx, db, [{ kind: 'node', targetId: id, op: 'delete' }]);
        return fromNodeRow(row);
      }),
    async count() {
      const row = await ctx.db
        .selectFrom('nodes')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
