// Posture admin (PostureService): import a scanner report, list and show the stored reports. An
// import is parsed and bounded before anything is written; the reports and the audit record
// commit in one transaction (audit fails closed). The report itself is never audited: only the
// scanner, the subjects and their counts.
import type { Clock } from '../../core/clock.ts';
import type { RequestContext } from '../../core/caller.ts';
import { NotFoundError } from '../../core/errors.ts';
import { normalizeDigest, type PostureReport } from '../../core/posture.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { StoreAggregates, Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import { parsePostureReport } from './formats/parse.ts';

export interface PostureServiceDeps {
  readonly store: Pick<Store, 'transaction' | 'posture'>;
  readonly auditor: Auditor;
  readonly clock: Clock;
  /** Called after an import committed (the index re-reads at once, not at its next poll). */
  readonly onImported?: () => void;
}

export class PostureService {
  readonly #d: PostureServiceDeps;

  constructor(d: PostureServiceDeps) {
    this.#d = d;
  }

  async import(
    ctx: RequestContext,
    format: string,
    report: Uint8Array,
    subjects: readonly string[],
  ): Promise<{ version: number; reports: PostureReport[] }> {
    const { scanner, findings } = parsePostureReport(format, report, subjects);
    const now = this.#d.clock.now();
    const out = await this.#d.store.transaction(async (tx: StoreAggregates) => {
      const stored = await tx.posture.import(scanner, findings, now);
      await this.#d.auditor.record(tx, ctx, {
        action: 'posture.import',
        target: scanner,
        outcome: 'success',
        details: {
          importVersion: stored.version,
          subjects: stored.reports.map((r) => ({
            subject: r.subject,
            kind: r.kind,
            ...r.counts,
            fixable: r.fixable,
          })),
        },
      });
      return stored;
    });
    this.#d.onImported?.();
    return out;
  }

  list(): Promise<PostureReport[]> {
    return this.#d.store.posture.list();
  }

  async get(subject: string): Promise<PostureReport> {
    const d = normalizeDigest(subject);
    if (!d) throw new InvalidArgumentError(`subject: "${subject.slice(0, 80)}" is not a sha256`);
    const r = await this.#d.store.posture.get(d);
    if (!r) throw new NotFoundError(`no posture report for ${d}`);
    return r;
  }
}
