// Leases of dynamic credentials at work (docs/access.md, "Leases"): providers record them
// through the LeasePort before making a credential; revocation ends the matching ones at once
// (endWhere); a sweeper ends expired ones, ones abandoned mid-creation by a crash, and ones whose
// ending failed or whose ender died. Ending a lease is:
//   claim (one conditional UPDATE: of several servers sharing the database exactly one wins)
//   → the provider's endLease (idempotent: drops the role if it exists)
//   → the `lease.end` audit record (fail closed: not audited → not marked ended, retried later)
//   → marked ended.
// A lease whose ending failed stays `ending` and is retried once its claim is older than
// claimTimeoutMs, by this or any other server.
import type { Lease, LeaseScope } from '../../core/access.ts';
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { CredentialProvider, LeasePort } from '../../plugins/credential-providers/catalog.ts';
import type { LeaseRecord, LeaseStore } from '../../store/types.ts';
import type { AuditInput } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';

export interface LeaseAudit {
  /** Appends one record outside a transaction; resolves once it is durable (Auditor.log). */
  log(ctx: RequestContext, input: AuditInput): Promise<void>;
}

export interface LeaseLog {
  warn(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
}

export interface LeaseManagerOptions {
  readonly leases: LeaseStore;
  readonly clock: Clock;
  readonly audit: LeaseAudit;
  readonly log: LeaseLog;
  /**
   * The provider instance of that name (the broker owns them; after a restart it builds one from
   * the stored record); undefined when there is none (the record is gone).
   */
  readonly providerFor: (
    name: string,
  ) => CredentialProvider | undefined | Promise<CredentialProvider | undefined>;
  /** Between sweeps (default 10 s). */
  readonly sweepIntervalMs?: number;
  /** Leases handled per batch (default 100, 1..1000). */
  readonly batchSize?: number;
  /** Batches per sweep at most (default 20): a sweep's work is bounded. */
  readonly maxBatchesPerSweep?: number;
  /** A lease still `creating` after this long was abandoned by a crash (default 2 min). */
  readonly creatingGraceMs?: number;
  /** An `ending` claim older than this is retried (default 2 min). */
  readonly claimTimeoutMs?: number;
  /** Ended leases are kept this long, then pruned (default 7 days). */
  readonly endedRetentionMs?: number;
  /** Waits between sweeps; resolves early (or rejects) when the signal aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const MAX_DATA_ENTRIES = 16;
const MAX_DATA_VALUE = 1024;
const ENDING_CONCURRENCY = 4;
/** Each endWhere pass empties what it listed, so this only guards against a broken store. */
const MAX_END_WHERE_BATCHES = 10_000;

const SYSTEM: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'lease-sweeper' };

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class LeaseManager implements LeasePort {
  readonly #o: Required<LeaseManagerOptions>;

  constructor(o: LeaseManagerOptions) {
    this.#o = {
      sweepIntervalMs: 10_000,
      batchSize: 100,
      maxBatchesPerSweep: 20,
      creatingGraceMs: 120_000,
      claimTimeoutMs: 120_000,
      endedRetentionMs: 7 * 86_400_000,
      sleep: defaultSleep,
      ...o,
    };
  }

  /** LeasePort: records a lease (state `creating`) before its credential is made. */
  async record(lease: Lease): Promise<void> {
    checkLease(lease);
    await this.#o.leases.create(lease);
  }

  /** LeasePort: the credential exists; false when the lease was claimed to end meanwhile. */
  activate(leaseId: string): Promise<boolean> {
    return this.#o.leases.activate(leaseId);
  }

  /**
   * Ends every `creating` or `active` lease matching `scope` (at least one field set) through
   * its provider. Returns how many this call ended; a lease whose provider failed to end it is
   * logged and left to the sweeper's retry.
   */
  async endWhere(scope: LeaseScope, reason: string, ctx: RequestContext = SYSTEM): Promise<number> {
    if (Object.values(scope).every((v) => v === undefined)) {
      throw new InvalidArgumentError('lease scope: at least one field is required');
    }
    let ended = 0;
    for (let i = 0; i < MAX_END_WHERE_BATCHES; i++) {
      const batch = await this.#o.leases.listMatching(scope, this.#o.batchSize);
      if (batch.length === 0) break;
      // -1: only `creating`/`active` leases are claimed here, never another server's ending.
      ended += await this.#endAll(batch, () => reason, -1, ctx);
    }
    return ended;
  }

  /**
   * One sweep: ends expired leases, leases abandoned mid-creation and failed endings due for a
   * retry (at most maxBatchesPerSweep batches), then prunes old ended leases. Returns how many
   * it ended.
   */
  async sweep(): Promise<number> {
    let ended = 0;
    for (let i = 0; i < this.#o.maxBatchesPerSweep; i++) {
      const now = this.#o.clock.now();
      const claimedBefore = now - this.#o.claimTimeoutMs;
      const due = await this.#o.leases.listDue(
        { now, creatingBefore: now - this.#o.creatingGraceMs, claimedBefore },
        this.#o.batchSize,
      );
      if (due.length === 0) break;
      ended += await this.#endAll(due, (l) => reasonFor(l, now), claimedBefore, SYSTEM);
      if (due.length < this.#o.batchSize) break;
    }
    await this.#o.leases.pruneEnded(this.#o.clock.now() - this.#o.endedRetentionMs);
    return ended;
  }

  /**
   * The sweeper task: a sweep at once (leases left by a crashed server), then one every
   * sweepIntervalMs until the signal aborts. A failed sweep is logged and retried next time.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const n = await this.sweep();
        if (n > 0) this.#o.log.info({ ended: n }, 'lease sweeper ended leases');
      } catch (e) {
        this.#o.log.warn({ err: messageOf(e) }, 'lease sweep failed');
      }
      if (signal.aborted) break;
      await this.#o.sleep(this.#o.sweepIntervalMs, signal);
    }
  }

  async #endAll(
    leases: readonly LeaseRecord[],
    reasonOf: (l: LeaseRecord) => string,
    claimedBefore: number,
    ctx: RequestContext,
  ): Promise<number> {
    let ended = 0;
    let next = 0;
    const worker = async () => {
      while (next < leases.length) {
        const l = leases[next++] as LeaseRecord;
        if (await this.#end(l, reasonOf(l), claimedBefore, ctx)) ended++;
      }
    };
    await Promise.all(Array.from({ length: ENDING_CONCURRENCY }, worker));
    return ended;
  }

  async #end(
    lease: LeaseRecord,
    reason: string,
    claimedBefore: number,
    ctx: RequestContext,
  ): Promise<boolean> {
    const o = this.#o;
    const claimed = await o.leases.claim(lease.id, o.clock.now(), reason, claimedBefore);
    if (claimed === null) return false; // ended, or being ended by another server
    const fields = { lease: claimed.id, provider: claimed.provider };
    let provider: CredentialProvider | undefined;
    try {
      provider = await o.providerFor(claimed.provider);
    } catch (e) {
      o.log.warn(
        { ...fields, err: messageOf(e) },
        'lease not ended: provider not built; retried later',
      );
      return false;
    }
    if (provider === undefined) {
      o.log.warn(fields, 'lease not ended: its credential provider is not loaded; retried later');
      return false;
    }
    try {
      await provider.endLease?.(claimed);
    } catch (e) {
      o.log.warn(
        { ...fields, err: messageOf(e) },
        'lease not ended: provider failed; retried later',
      );
      return false;
    }
    try {
      await o.audit.log(ctx, {
        action: 'lease.end',
        target: claimed.id,
        outcome: 'success',
        details: {
          lease_id: claimed.id,
          provider: claimed.provider,
          server: claimed.server,
          client: claimed.client,
          policy: claimed.policy,
          reason,
        },
      });
    } catch (e) {
      // Fail closed: not marked ended unaudited; the retry ends it again (idempotent) and audits.
      o.log.warn({ ...fields, err: messageOf(e) }, 'lease end not audited; retried later');
      return false;
    }
    return o.leases.markEnded(claimed.id, o.clock.now());
  }
}

function reasonFor(l: LeaseRecord, now: number): string {
  if (l.state === 'ending') return l.endReason === '' ? 'retry' : l.endReason;
  if (l.expiresAt <= now) return 'expired';
  return 'abandoned during creation';
}

function checkLease(l: Lease): void {
  const bad = (m: string) => new InvalidArgumentError(`lease: ${m}`);
  if (typeof l.id !== 'string' || l.id === '' || l.id.length > 128) throw bad('id: 1..128 chars');
  if (l.provider === '') throw bad('provider is required');
  if (!Number.isSafeInteger(l.expiresAt) || !Number.isSafeInteger(l.createdAt))
    throw bad('expiresAt and createdAt must be epoch milliseconds');
  if (l.expiresAt <= l.createdAt) throw bad('expiresAt must be after createdAt');
  const entries = Object.entries(l.data);
  if (entries.length > MAX_DATA_ENTRIES) throw bad(`data: at most ${MAX_DATA_ENTRIES} entries`);
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || v.length > MAX_DATA_VALUE || k.length > 64)
      throw bad(`data.${k.slice(0, 64)}: a string of at most ${MAX_DATA_VALUE} chars`);
  }
}
