// The audit log, hash-chained. Appends serialize on the audit_head row (FOR UPDATE on
// PostgreSQL; BEGIN IMMEDIATE on SQLite), so concurrent appends from several servers still form
// one unbroken chain: each reads the tip only after the previous append has committed.
import {
  type AuditEvent,
  type AuditOutcome,
  type AuditRecord,
  auditHash,
} from '../../core/audit.ts';
import type { AuditStore } from '../types.ts';
import { type SqlContext, atomic, lockRows } from './dialect.ts';
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

async function append(ctx: SqlContext, event: AuditEvent): Promise<AuditRecord> {
  // Hash what will be read back: details after a JSON round trip (drops undefined, functions).
  const details = JSON.parse(JSON.stringify(event.details ?? {})) as Record<string, unknown>;
  const e: AuditEvent = { ...event, details };
  return atomic(ctx, async (db) => {
    const head = await lockRows(
      ctx,
      db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1),
    ).executeTakeFirstOrThrow();
    const seq = Number(head.seq) + 1;
    const hash = auditHash(seq, head.hash, e);
    await db
      .insertInto('audit')
      .values({
        seq,
        time: e.time,
        actor: e.actor,
        action: e.action,
        target: e.target,
        outcome: e.outcome,
        correlation_id: e.correlationId,
        details: JSON.stringify(details),
        prev_hash: head.hash,
        hash,
      })
      .execute();
    await db.updateTable('audit_head').set({ seq, hash }).where('id', '=', 1).execute();
    return { ...e, seq, prevHash: head.hash, hash };
  });
}

export function auditStore(ctx: SqlContext): AuditStore {
  const { db } = ctx;
  return {
    append: (event) => append(ctx, event),
    async list(filter, limit) {
      checkLimit('limit', limit);
      let q = db.selectFrom('audit').selectAll();
      if (filter.afterSeq !== undefined) q = q.where('seq', '>', filter.afterSeq);
      if (filter.action !== undefined) q = q.where('action', '=', filter.action);
      if (filter.actor !== undefined) q = q.where('actor', '=', filter.actor);
      const rows = await q.orderBy('seq').limit(limit).execute();
      return rows.map(fromRow);
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
