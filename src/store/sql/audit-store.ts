// The audit log, hash-chained. Appends serialize on the audit_head row (FOR UPDATE on
// PostgreSQL; BEGIN IMMEDIATE on SQLite), so concurrent appends from several servers still form
// one unbroken chain: each reads the tip only after the previous append has committed.
import {
  type AuditEvent,
  type AuditOutcome,
  type AuditRecord,
  auditHashOf,
  canonicalJson,
} from '../../core/audit.ts';
import { CompiledQuery } from 'kysely';
import type { AuditStore } from '../types.ts';
import { type SqlContext, atomic, chunks, lockRows } from './dialect.ts';
import { checkLimit } from './codec.ts';
import type { AuditRow } from './schema.ts';

function fromRow(r: AuditRow): AuditRecord {
  return {
    seq: Number(r.seq),
    time: Number(r.time),
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome as AuditOutcome,
    correlationId: r.correlation_id,
    details: JSON.parse(r.details) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/**
 * Appends events in order under one lock of the chain head: one head read, multi-row inserts,
 * one head update. Callers group records arriving together (group commit).
 */
async function appendMany(ctx: SqlContext, events: readonly AuditEvent[]): Promise<AuditRecord[]> {
  if (events.length === 0) return [];
  return atomic(ctx, async (db) => {
    const head = await lockRows(
      ctx,
      db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1),
    ).executeTakeFirstOrThrow();
    let seq = Number(head.seq);
    const first = seq + 1;
    let prevHash = head.hash;
    const records: AuditRecord[] = [];
    const rows: string[] = [];
    for (const event of events) {
      // Stored as canonical JSON, which reads back to itself: the hash covers exactly what is kept.
      const detailsJson = canonicalJson(event.details ?? {});
      seq += 1;
      const hash = auditHashOf(seq, prevHash, event, detailsJson);
      records.push({ ...event, seq, prevHash, hash });
      rows.push(detailsJson);
      prevHash = hash;
    }
    for (const part of chunks(records, COLUMNS.length, ctx.dialect.maxParams)) {
      // Hand-built multi-row insert: the audit log is on every issuance's path, and building a
      // query tree per row costs more than the database does.
      const params = part.flatMap((r) => [
        r.seq,
        r.time,
        r.actor,
        r.action,
        r.target,
        r.outcome,
        r.correlationId,
        rows[r.seq - first] as string,
        r.prevHash,
        r.hash,
      ]);
      await db.executeQuery(CompiledQuery.raw(insertSql(ctx.dialect.name, part.length), params));
    }
    await db.updateTable('audit_head').set({ seq, hash: prevHash }).where('id', '=', 1).execute();
    return records;
  });
}

const COLUMNS = [
  'seq',
  'time',
  'actor',
  'action',
  'target',
  'outcome',
  'correlation_id',
  'details',
  'prev_hash',
  'hash',
];

function insertSql(dialect: 'sqlite' | 'postgres', rowCount: number): string {
  let n = 0;
  const mark = () => (dialect === 'postgres' ? `$${++n}` : '?');
  const row = () => `(${COLUMNS.map(mark).join(', ')})`;
  return `insert into audit (${COLUMNS.join(', ')}) values ${Array.from({ length: rowCount }, row).join(', ')}`;
}

export function auditStore(ctx: SqlContext): AuditStore {
  const { db } = ctx;
  return {
    append: async (event) => (await appendMany(ctx, [event]))[0] as AuditRecord,
    appendMany: (events) => appendMany(ctx, events),
    async list(filter, limit) {
      checkLimit('limit', limit);
      let q = db.selectFrom('audit').selectAll();
      if (filter.afterSeq !== undefined) q = q.where('seq', '>', filter.afterSeq);
      if (filter.action !== undefined) q = q.where('action', '=', filter.action);
      if (filter.actor !== undefined) q = q.where('actor', '=', filter.actor);
      if (filter.correlationId !== undefined)
        q = q.where('correlation_id', '=', filter.correlationId);
      const rows = await q.orderBy('seq').limit(limit).execute();
      return rows.map(fromRow);
    },
    async head() {
      const h = await db
        .selectFrom('audit_head')
        .select(['seq', 'hash'])
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return { seq: Number(h.seq), hash: h.hash };
    },
    async tail(limit) {
      checkLimit('limit', limit);
      const rows = await db
        .selectFrom('audit')
        .selectAll()
        .orderBy('seq', 'desc')
        .limit(limit)
        .execute();
      return rows.map(fromRow);
    },
  };
}
