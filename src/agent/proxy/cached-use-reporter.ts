// Audit of credentials served from the agent's cache (docs/injection.md "Audit"): each use is
// queued and sent to the server in batches (release.proto ReportCachedUses), which records the
// access.request → access.authorization → access.credential chain marked `cached: true`. The
// queue is bounded: what does not fit while the server is away is counted, and the count is
// reported as its own record once the server answers again. Nothing here holds a credential's
// value — only the names the audit shows.
import { randomUUID } from 'node:crypto';
import type { AccessHttpRequest, CachedCredentialUse } from '../../core/access.ts';
import type { Clock } from '../../core/clock.ts';
import { isTesseraError } from '../../core/errors.ts';
import { formatSelector } from '../../core/selector.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { ReleasedCredential } from '../cache/credential-cache.ts';

/** The server takes at most this many a report (server/broker/cached-uses.ts). */
export const MAX_USES_PER_REPORT = 500;

export type SendReport = (
  uses: readonly CachedCredentialUse[],
  dropped: number,
  signal: AbortSignal,
) => Promise<void>;

export interface CachedUseReporterOptions {
  readonly send: SendReport;
  readonly clock: Clock;
  /** Uses kept while the server is away; more are counted as dropped. */
  readonly maxQueued: number;
  /** How long a first use waits for others to join its report. */
  readonly batchDelayMs?: number;
  readonly retryMs?: number;
  readonly log: (msg: string, fields?: Record<string, unknown>) => void;
}

export class CachedUseReporter {
  readonly #o: CachedUseReporterOptions;
  #queue: CachedCredentialUse[] = [];
  #dropped = 0;
  #wake: (() => void) | null = null;

  constructor(o: CachedUseReporterOptions) {
    this.#o = o;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get dropped(): number {
    return this.#dropped;
  }

  /** Records one use of `credential`, served from the cache to `caller`. */
  record(
    caller: AttestedCaller,
    credential: ReleasedCredential,
    wayIn: string,
    request?: AccessHttpRequest,
  ): void {
    const entry =
      caller.entries.find((e) => e.spiffeId === credential.spiffeId) ?? caller.entries[0];
    if (!entry) return;
    if (this.#queue.length >= this.#o.maxQueued) {
      this.#dropped++;
      return;
    }
    this.#queue.push({
      entryId: entry.id,
      selectors: caller.selectors.map(formatSelector),
      attributes: {
        'unix.uid': String(caller.process.uid),
        'unix.gid': String(caller.process.gid),
      },
      server: credential.server,
      ...(request ? { request } : {}),
      correlationId: randomUUID(),
      releasedCorrelationId: credential.correlationId,
      policy: credential.policy,
      credentialProvider: credential.credentialProvider,
      leaseId: credential.credential.leaseId,
      expiresAt: credential.credential.expiresAt,
      at: this.#o.clock.now(),
      wayIn,
    });
    this.#wake?.();
  }

  /** Sends until `signal` aborts; then one last attempt with what is queued. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.#queue.length === 0 && this.#dropped === 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        this.#wake = null;
        continue;
      }
      await sleep(this.#o.batchDelayMs ?? 200, signal);
      if (signal.aborted) break;
      if (!(await this.#sendOne(signal))) await sleep(this.#o.retryMs ?? 2000, signal);
    }
  }

  /** Sends one batch; false when the server did not take it (kept for the next try). */
  async #sendOne(signal: AbortSignal): Promise<boolean> {
    const batch = this.#queue.slice(0, MAX_USES_PER_REPORT);
    const dropped = this.#dropped;
    try {
      await this.#o.send(batch, dropped, signal);
    } catch (e) {
      if (isTesseraError(e) && e.code !== 'unavailable') {
        // Refused (an entry the server no longer lets this agent speak for): counted, not retried.
        this.#queue = this.#queue.slice(batch.length);
        this.#dropped += batch.length;
        this.#o.log('the server refused a report of cached credential uses; counted as dropped', {
          err: e.message,
          uses: batch.length,
        });
        return false;
      }
      this.#o.log('could not report cached credential uses; will retry', {
        err: (e as Error).message,
        queued: this.#queue.length,
        dropped: this.#dropped,
      });
      return false;
    }
    this.#queue = this.#queue.slice(batch.length);
    this.#dropped -= dropped;
    return true;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
