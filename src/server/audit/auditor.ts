// The audit layer. Every admin change, attestation, issuance and denial is recorded through it,
// and it fails closed:
// - `record` appends inside the caller's transaction, so a change that cannot be audited rolls
//   back with it;
// - `log` is for facts outside a transaction (issuance, denials): records arriving together are
//   committed together in one transaction (group commit), and each caller resumes only once its
//   record is durable, so an SVID is never handed out unaudited.
import { type AuditEvent, type AuditOutcome, redactDetails } from '../../core/audit.ts';
import type { Clock } from '../../core/clock.ts';
import type { StoreAggregates } from '../../store/types.ts';
import { type RequestContext, actorOf } from '../../core/caller.ts';

export interface AuditInput {
  action: string;
  target: string;
  outcome: AuditOutcome;
  details?: Record<string, unknown>;
}

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const MAX_GROUP = 500;

export class Auditor {
  readonly #clock: Clock;
  /** Only the audit port: records are appended here (or through the caller's transaction). */
  readonly #store: Pick<StoreAggregates, 'audit'>;
  readonly #onRecord: (action: string, outcome: AuditOutcome) => void;
  #pending: Pending[] = [];
  #flushing = false;
  readonly #listeners = new Set<() => void>();

  constructor(
    clock: Clock,
    store: Pick<StoreAggregates, 'audit'>,
    onRecord: (action: string, outcome: AuditOutcome) => void = () => {},
  ) {
    this.#clock = clock;
    this.#store = store;
    this.#onRecord = onRecord;
  }

  /** Appends one record through `tx`, the caller's transaction. */
  async record(
    tx: Pick<StoreAggregates, 'audit'>,
    ctx: RequestContext,
    input: AuditInput,
  ): Promise<void> {
    await tx.audit.append(this.#event(ctx, input));
    this.#onRecord(input.action, input.outcome);
    // Before the caller's commit: a listener that reads at once may not see it yet (see onAppend).
    this.#notify();
  }

  /**
   * Calls `listener` after this server appends records (followers of the log). A hint, not a
   * delivery: records appended through `record` may still be uncommitted when it runs, and other
   * servers sharing the database never call it, so followers also poll. Returns an unsubscribe.
   */
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }

  /** Appends one record outside any transaction; resolves when it is committed. */
  log(ctx: RequestContext, input: AuditInput): Promise<void> {
    const event = this.#event(ctx, input);
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const group = this.#pending.splice(0, MAX_GROUP);
      try {
        await this.#store.audit.appendMany(group.map((p) => p.event));
        for (const p of group) {
          this.#onRecord(p.event.action, p.event.outcome);
          p.resolve();
        }
        this.#notify();
      } catch (e) {
        for (const p of group) p.reject(e);
      }
    }
    this.#flushing = false;
  }

  #event(ctx: RequestContext, input: AuditInput): AuditEvent {
    return {
      time: this.#clock.now(),
      actor: actorOf(ctx.caller),
      action: input.action,
      target: input.target,
      outcome: input.outcome,
      correlationId: ctx.correlationId,
      details: redactDetails(input.details ?? {}),
    };
  }
}
