// Feeds one sink from the audit table. The database is the spool: the exporter reads records
// after its cursor in batches (memory bounded by the batch size), delivers them, then advances
// the cursor. A slow or dead sink never blocks issuance — audit writes do not wait for it — and
// nothing is dropped: after an outage (of the sink or of this server) it catches up from the
// cursor. While it cannot deliver it says so on every failed attempt (error log with the lag)
// and in metrics (failures, lag in records).
import type { AuditRecord } from '../../core/audit.ts';
import type { AuditStore } from '../../store/types.ts';
import type { CursorStore, Cursor } from './export-cursor.ts';
import { type ExportSink, toExportRecord } from './export-record.ts';

export interface ExporterLog {
  info(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface ExporterOptions {
  name: string;
  sink: ExportSink;
  audit: Pick<AuditStore, 'list' | 'head'>;
  cursor: CursorStore;
  trustDomain: string;
  /** Where a sink without a cursor starts: the first record, or the head at its first start. */
  start: 'beginning' | 'now';
  batchSize: number;
  /** Fallback poll (other servers' writes, missed wake-ups). */
  pollMs: number;
  maxBackoffMs: number;
  /** Called after this server appends records. Returns an unsubscribe. */
  onAppend(listener: () => void): () => void;
  log: ExporterLog;
  metrics: { delivered(n: number): void; failed(): void; lag(n: number): void };
}

export class AuditExporter {
  readonly #o: ExporterOptions;
  #wake: (() => void) | null = null;
  #woken = false;

  constructor(o: ExporterOptions) {
    this.#o = o;
  }

  /** Runs until `signal` aborts; never throws for a sink's failure (it retries). */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const unsubscribe = o.onAppend(() => this.#poke());
    const onAbort = () => this.#poke();
    signal.addEventListener('abort', onAbort);
    let failures = 0;
    let cursor: Cursor | null = null;
    try {
      while (!signal.aborted) {
        try {
          cursor ??= await this.#startCursor();
          const batch = await o.audit.list({ afterSeq: cursor.seq }, o.batchSize);
          if (batch.length > 0) {
            this.#checkContinuity(cursor, batch[0] as AuditRecord);
            await o.sink.deliver(
              batch.map((r) => toExportRecord(r, o.trustDomain)),
              signal,
            );
            const last = batch[batch.length - 1] as AuditRecord;
            cursor = { seq: last.seq, hash: last.hash };
            await o.cursor.write(cursor);
            o.metrics.delivered(batch.length);
            if (failures > 0)
              o.log.info({ sink: o.name, seq: last.seq }, 'audit sink delivering again');
            failures = 0;
            if (batch.length === o.batchSize) continue;
          }
          o.metrics.lag(Math.max(0, (await o.audit.head()).seq - cursor.seq));
          await this.#sleep(o.pollMs, signal);
        } catch (e) {
          if (signal.aborted) break;
          failures++;
          o.metrics.failed();
          const backoff = Math.min(o.maxBackoffMs, 500 * 2 ** Math.min(failures - 1, 20));
          const head = await o.audit.head().catch(() => null);
          const lag = head && cursor ? Math.max(0, head.seq - cursor.seq) : undefined;
          if (lag !== undefined) o.metrics.lag(lag);
          o.log.error(
            {
              sink: o.name,
              err: (e as Error).message,
              delivered: cursor?.seq,
              behind: lag,
              retryInMs: backoff,
            },
            'audit sink cannot deliver; records wait in the database and are sent when it recovers',
          );
          await this.#sleep(backoff, signal, false);
        }
      }
    } finally {
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      await o.sink.close().catch(() => {});
    }
  }

  async #startCursor(): Promise<Cursor> {
    const stored = await this.#o.cursor.read();
    if (stored) return stored;
    const c = this.#o.start === 'now' ? await this.#o.audit.head() : { seq: 0, hash: '' };
    await this.#o.cursor.write(c);
    return c;
  }

  /** A record that does not chain onto the last one delivered means the log was rewritten. */
  #checkContinuity(cursor: Cursor, next: AuditRecord): void {
    if (cursor.hash === '' || (next.seq === cursor.seq + 1 && next.prevHash === cursor.hash))
      return;
    this.#o.log.error(
      { sink: this.#o.name, delivered: cursor.seq, next: next.seq },
      'audit records do not continue the chain this sink last delivered: the log was truncated or rewritten (run `tessera audit verify`)',
    );
  }

  #poke(): void {
    this.#woken = true;
    this.#wake?.();
  }

  #sleep(ms: number, signal: AbortSignal, wakeable = true): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    if (wakeable && this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.#wake = null;
        if (wakeable) this.#woken = false;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wake = wakeable ? done : null;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
