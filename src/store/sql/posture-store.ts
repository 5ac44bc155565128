// Posture reports (ports/posture.ts): one row per subject, replaced by each import naming it, and
// the import counter (one row). An import bumps the counter, writes its reports and announces
// `access` in one transaction: agents drop cached credentials and re-check entry conditions.
import type { PostureFindings, PostureReport, PostureScanner } from '../../core/posture.ts';
import type { PostureStore } from '../ports/posture.ts';
import { atomic, type Db, type SqlContext } from './dialect.ts';
import type { PostureReportRow } from './schema.ts';

const reportOf = (r: PostureReportRow): PostureReport => ({
  subject: r.subject,
  kind: r.kind === 'image' ? 'image' : 'binary',
  scanner: r.scanner as PostureScanner,
  artifact: r.artifact,
  counts: {
    critical: Number(r.critical_count),
    high: Number(r.high_count),
    medium: Number(r.medium_count),
    low: Number(r.low_count),
    unknown: Number(r.unknown_count),
  },
  fixable: Number(r.fixable_count),
  scannedAt: Number(r.scanned_at),
  importVersion: Number(r.import_version),
  importedAt: Number(r.imported_at),
});

async function revisionIn(db: Db): Promise<number> {
  const row = await db
    .selectFrom('posture_revision')
    .select('revision')
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  return Number(row.revision);
}

export function postureStore(ctx: SqlContext): PostureStore {
  return {
    import: (scanner, findings, at) =>
      atomic(ctx, async (db) => {
        await db
          .updateTable('posture_revision')
          .set((eb) => ({ revision: eb('revision', '+', 1) }))
          .where('id', '=', 1)
          .execute();
        const version = await revisionIn(db);
        const reports: PostureReport[] = findings.map((f: PostureFindings) => ({
          ...f,
          scanner,
          scannedAt: f.scannedAt ?? at,
          importVersion: version,
          importedAt: at,
        }));
        for (const r of reports) {
          await db.deleteFrom('posture_reports').where('subject', '=', r.subject).execute();
          await db
            .insertInto('posture_reports')
            .values({
              subject: r.subject,
              kind: r.kind,
              scanner: r.scanner,
              artifact: r.artifact,
              critical_count: r.counts.critical,
              high_count: r.counts.high,
              medium_count: r.counts.medium,
              low_count: r.counts.low,
              unknown_count: r.counts.unknown,
              fixable_count: r.fixable,
              scanned_at: r.scannedAt,
              import_version: r.importVersion,
              imported_at: r.importedAt,
            })
            .execute();
        }
        await ctx.notifier.announce(db, 'access');
        return { version, reports };
      }),
    async list() {
      const rows = await ctx.db
        .selectFrom('posture_reports')
        .selectAll()
        .orderBy('subject')
        .execute();
      return rows.map(reportOf);
    },
    async get(subject) {
      const row = await ctx.db
        .selectFrom('posture_reports')
        .selectAll()
        .where('subject', '=', subject)
        .executeTakeFirst();
      return row ? reportOf(row) : undefined;
    },
    revision: () => revisionIn(ctx.db),
  };
}
