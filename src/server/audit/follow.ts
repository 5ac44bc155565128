// Following the audit log (`audit list --follow`): the records after a sequence number, then new
// ones as they are written. This server's own appends wake the follower at once; a poll of the
// store is the fallback that also finds records written by other servers sharing PostgreSQL.
import type { AuditRecord } from '../../core/audit.ts';
import type { AuditFilter, AuditStore } from '../../store/types.ts';

export interface FollowAuditOptions {
  readonly audit: Pick<AuditStore, 'list'>;
  /** Subscribes to this server's appends; returns an unsubscribe (Auditor.onAppend). */
  readonly onAppend: (listener: () => void) => () => void;
  readonly filter: AuditFilter;
  readonly signal: AbortSignal;
  /** Longest wait between two reads of the store (default 1 s). */
  readonly pollMs?: number;
  /** Records per read and per yielded batch (default 500). */
  readonly batch?: number;
}

export const FOLLOW_POLL_MS = 1000;
const FOLLOW_BATCH = 500;
/** First re-read after a wake that found nothing (the append's transaction may be committing). */
const RECHECK_MS = 20;

/** Yields non-empty batches in ascending seq order until `signal` aborts. */
export async function* followAudit(o: FollowAuditOptions): AsyncGenerator<AuditRecord[]> {
  const pollMs = o.pollMs ?? FOLLOW_POLL_MS;
  const batchSize = o.batch ?? FOLLOW_BATCH;
  let after = o.filter.afterSeq ?? 0;
  let woken = false;
  let wake: (() => void) | null = null;
  const off = o.onAppend(() => {
    woken = true;
    wake?.();
  });
  const onAbort = (): void => wake?.();
  o.signal.addEventListener('abort', onAbort);
  // After a wake that found nothing, re-read soon and then less often, up to pollMs: a record
  // appended inside a transaction wakes us before its commit.
  let recheck = 0;
  try {
    while (!o.signal.aborted) {
      woken = false;
      const records = await o.audit.list({ ...o.filter, afterSeq: after }, batchSize);
      const last = records.at(-1);
      if (last) {
        after = last.seq;
        recheck = 0;
        yield records;
        if (records.length === batchSize) continue;
      }
      if (o.signal.aborted) return;
      if (woken) {
        recheck = RECHECK_MS;
        continue;
      }
      const delay = recheck > 0 ? recheck : pollMs;
      recheck = recheck > 0 && recheck * 2 < pollMs ? recheck * 2 : 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        function done(): void {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
      });
      if (woken && recheck === 0) recheck = RECHECK_MS;
    }
  } finally {
    off();
    o.signal.removeEventListener('abort', onAbort);
  }
}
