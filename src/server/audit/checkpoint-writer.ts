// Writes signed checkpoints of the audit head to a sink outside the database: at an interval
// (only when the head moved) and on shutdown. See docs/threat-model.md for what this proves.
import { type AuditCheckpoint, signCheckpoint } from '../../core/audit-checkpoint.ts';
import type { Clock } from '../../core/clock.ts';
import type { AuditStore } from '../../store/types.ts';
import type { CheckpointKey } from './checkpoint-key.ts';

/** Where checkpoints go: one JSON line each; resolves once it is durable there. */
export interface CheckpointSink {
  write(line: string): Promise<void>;
  close(): Promise<void>;
}

export interface CheckpointWriterOptions {
  audit: Pick<AuditStore, 'head'>;
  clock: Clock;
  key: CheckpointKey;
  trustDomain: string;
  serverId: string;
  sink: CheckpointSink;
}

export class CheckpointWriter {
  readonly #o: CheckpointWriterOptions;
  #lastSeq = -1;
  #lastHash = '';

  constructor(o: CheckpointWriterOptions) {
    this.#o = o;
  }

  #queue: Promise<unknown> = Promise.resolve();

  /**
   * Signs and writes the current head; unless `always`, only when it moved since the last one.
   * Calls run one at a time: two overlapping ones could otherwise write an older head after a
   * newer one, which `audit verify` would rightly read as a log cut short.
   */
  checkpoint(always = false): Promise<AuditCheckpoint | null> {
    const run = this.#queue.then(() => this.#checkpoint(always));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #checkpoint(always: boolean): Promise<AuditCheckpoint | null> {
    const head = await this.#o.audit.head();
    if (!always && head.seq === this.#lastSeq && head.hash === this.#lastHash) return null;
    const c = signCheckpoint(
      {
        trustDomain: this.#o.trustDomain,
        serverId: this.#o.serverId,
        seq: head.seq,
        hash: head.hash,
        time: this.#o.clock.now(),
      },
      this.#o.key.privateKey,
      this.#o.key.publicKey,
    );
    await this.#o.sink.write(JSON.stringify(c) + '\n');
    this.#lastSeq = head.seq;
    this.#lastHash = head.hash;
    return c;
  }

  close(): Promise<void> {
    return this.#o.sink.close();
  }
}
