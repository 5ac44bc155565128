// The audit layer. Every admin change, attestation, issuance and denial is recorded through it.
// It fails closed: callers append inside the same transaction as the change (or before handing
// out what they issued), so a change that cannot be audited does not happen.
import { type AuditOutcome, redactDetails } from '../../core/audit.ts';
import type { Clock } from '../../core/clock.ts';
import type { StoreAggregates } from '../../store/types.ts';
import { type RequestContext, actorOf } from '../context.ts';

export interface AuditInput {
  action: string;
  target: string;
  outcome: AuditOutcome;
  details?: Record<string, unknown>;
}

export class Auditor {
  readonly #clock: Clock;
  readonly #onRecord: (action: string, outcome: AuditOutcome) => void;

  constructor(clock: Clock, onRecord: (action: string, outcome: AuditOutcome) => void = () => {}) {
    this.#clock = clock;
    this.#onRecord = onRecord;
  }

  /** Appends one record through `tx` (a transaction's aggregates, or the store itself). */
  async record(
    tx: Pick<StoreAggregates, 'audit'>,
    ctx: RequestContext,
    input: AuditInput,
  ): Promise<void> {
    await tx.audit.append({
      time: this.#clock.now(),
      actor: actorOf(ctx.caller),
      action: input.action,
      target: input.target,
      outcome: input.outcome,
      correlationId: ctx.correlationId,
      details: redactDetails(input.details ?? {}),
    });
    this.#onRecord(input.action, input.outcome);
  }
}
