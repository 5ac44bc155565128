// What a SIEM receives for each audit record: every field the hash covers, unchanged (time in
// epoch ms), plus the trust domain, so a receiver can recompute each hash and check that seq and
// prevHash continue without a gap. Details are already redacted before the store (core/audit.ts).
import type { AuditRecord } from '../../core/audit.ts';

export interface ExportedRecord {
  readonly trustDomain: string;
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly time: number;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly outcome: string;
  readonly correlationId: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export function toExportRecord(r: AuditRecord, trustDomain: string): ExportedRecord {
  return {
    trustDomain,
    seq: r.seq,
    prevHash: r.prevHash,
    hash: r.hash,
    time: r.time,
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    correlationId: r.correlationId,
    details: r.details,
  };
}

/** A sink adapter: delivers a batch in order, resolves once the receiver has it. */
export interface ExportSink {
  deliver(records: readonly ExportedRecord[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
