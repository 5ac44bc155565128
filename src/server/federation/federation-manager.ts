// Polls the bundle endpoints of the federation relationships and keeps the foreign bundles in
// the store (docs/federation.md).
//
// - Schedule: each relationship's next attempt is stored with it (status.nextAttemptAt), so it
//   survives restarts and is shared by every server on the same database: a server that finds
//   the attempt already moved into the future by another one skips it. Two servers may still
//   fetch the same endpoint at the same moment; that is harmless (GET only, sequence-ordered).
// - After a success the next attempt is at the bundle's spiffe_refresh_hint, clamped to the
//   poll policy; after a failure at an exponential backoff with jitter, never later than the
//   regular interval.
// - A fetched bundle with a lower spiffe_sequence than the stored one never replaces it.
// - A changed bundle is stored and audited (`federation.bundle.updated`) in one transaction, then
//   the onBundleUpdated listeners are told. Failures are logged and recorded in the status, not
//   audited (they repeat).
// - Foreign bundles changed by another server on the same database (its fetch, an admin call
//   there) are noticed by comparing the stored bundles with what was last seen, every
//   `watchIntervalMs`, and told to the listeners the same way.
import { createHash } from 'node:crypto';
import type { Bundle } from '../../core/bundle.ts';
import { bundleEquals } from '../../core/bundle.ts';
import type { Clock } from '../../core/clock.ts';
import { NotFoundError } from '../../core/errors.ts';
import {
  type FederationRelationship,
  type FederationStatus,
  MAX_STATUS_ERROR_CHARS,
  type PollPolicy,
  backoffDelayMs,
  defaultPollPolicy,
  refreshIntervalMs,
} from '../../core/federation.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { FetchLimits } from './endpoint-client.ts';
import { fetchFederatedBundle } from './fetch-bundle.ts';

/** Relationships handled per server; more are refused at creation (bounded work per poll). */
export const MAX_RELATIONSHIPS = 1000;
/** Fetches running at once during one poll. */
const CONCURRENCY = 8;

export type RefreshResult =
  | {
      readonly ok: true;
      /** Whether the stored bundle changed. */
      readonly updated: boolean;
      /** Set when the fetched bundle was older (lower spiffe_sequence) than the stored one. */
      readonly ignoredLowerSequence: boolean;
      /** The bundle stored after this fetch. */
      readonly bundle: Bundle;
      readonly nextAttemptAt: number;
    }
  | { readonly ok: false; readonly error: string; readonly nextAttemptAt: number };

export interface FederationLog {
  warn(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
}

export interface FederationManagerOptions {
  store: Pick<Store, 'transaction' | 'bundles' | 'federations'>;
  auditor: Auditor;
  clock: Clock;
  log: FederationLog;
  /** Extra CA certificates (PEM) trusted for https_web endpoints (config federation.ca_file). */
  extraCaPem?: readonly string[];
  limits?: FetchLimits;
  policy?: PollPolicy;
  /** [0, 1); jitter of the backoff. */
  random?: () => number;
  /** This server's own trust domain: its bundle is not a federated one and is never reported. */
  trustDomain?: string;
  /** How often the stored foreign bundles are compared with the last seen (default 5 s). */
  watchIntervalMs?: number;
  /** Told the outcome of every fetch (metrics). */
  onFetched?: (trustDomain: string, outcome: FetchOutcome) => void;
}

export type FetchOutcome = 'updated' | 'unchanged' | 'ignored' | 'failed';

export class FederationManager {
  readonly #o: Required<Omit<FederationManagerOptions, 'limits'>> & { limits?: FetchLimits };
  readonly #listeners = new Set<(trustDomain: string) => void>();
  readonly #inFlight = new Map<string, Promise<RefreshResult>>();
  /** Fingerprints of the foreign bundles as last seen or reported, by trust domain. */
  #seen = new Map<string, string>();
  #watchedAt = -Infinity;
  #baselined = false;

  constructor(o: FederationManagerOptions) {
    this.#o = {
      extraCaPem: [],
      policy: defaultPollPolicy,
      random: Math.random,
      trustDomain: '',
      watchIntervalMs: 5_000,
      onFetched: () => {},
      ...o,
    };
  }

  /**
   * Registers a listener told the trust domain whose federated bundle changed (fetched, set by
   * hand or deleted). Returns the unsubscribe function. Listener errors are logged, not thrown.
   */
  onBundleUpdated(fn: (trustDomain: string) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Tells the listeners; also used by the admin service after a manual change. `stored` is the
   * bundle now stored (null: deleted), remembered so the store watch does not report it again.
   */
  notifyBundleUpdated(trustDomain: string, stored?: Bundle | null): void {
    if (stored === null) this.#seen.delete(trustDomain);
    else if (stored !== undefined) this.#seen.set(trustDomain, fingerprint(stored));
    this.#tell(trustDomain);
  }

  #tell(trustDomain: string): void {
    for (const fn of this.#listeners) {
      try {
        fn(trustDomain);
      } catch (e) {
        this.#o.log.warn({ trustDomain, err: messageOf(e) }, 'onBundleUpdated listener failed');
      }
    }
  }

  /** The periodic task (every second): due fetches, then the store watch. */
  async tick(): Promise<void> {
    await this.pollDue();
    await this.watchStore();
  }

  /**
   * Reports foreign bundles whose stored content differs from what this server last saw (changed
   * by another server sharing the datastore), at most every `watchIntervalMs`. The first call
   * only takes the baseline.
   */
  async watchStore(): Promise<void> {
    const now = this.#o.clock.now();
    if (now - this.#watchedAt < this.#o.watchIntervalMs) return;
    this.#watchedAt = now;
    const current = new Map(
      (await this.#o.store.bundles.list())
        .filter((b) => b.trustDomain !== this.#o.trustDomain)
        .map((b) => [b.trustDomain, fingerprint(b)] as const),
    );
    const changed = [...current].filter(([td, fp]) => this.#seen.get(td) !== fp).map(([td]) => td);
    const deleted = [...this.#seen.keys()].filter((td) => !current.has(td));
    this.#seen = current;
    if (!this.#baselined) {
      this.#baselined = true;
      return;
    }
    for (const td of [...changed, ...deleted]) this.#tell(td);
  }

  /** Fetches every relationship whose next attempt is due. */
  async pollDue(): Promise<void> {
    const now = this.#o.clock.now();
    const due = (await this.#o.store.federations.list(MAX_RELATIONSHIPS)).filter(
      (r) => r.status.nextAttemptAt <= now,
    );
    for (let i = 0; i < due.length; i += CONCURRENCY) {
      await Promise.all(due.slice(i, i + CONCURRENCY).map((r) => this.#fetch(r)));
    }
  }

  /** Fetches now, whatever the schedule (the Refresh admin call). */
  async refresh(trustDomain: string): Promise<RefreshResult> {
    const rel = await this.#o.store.federations.get(trustDomain);
    if (!rel) throw new NotFoundError(`federation relationship with "${trustDomain}" not found`);
    return this.#fetch(rel);
  }

  /** One fetch per trust domain at a time: a second caller shares the running one. */
  #fetch(rel: FederationRelationship): Promise<RefreshResult> {
    const running = this.#inFlight.get(rel.trustDomain);
    if (running) return running;
    const p = this.#fetchOnce(rel).finally(() => this.#inFlight.delete(rel.trustDomain));
    this.#inFlight.set(rel.trustDomain, p);
    return p;
  }

  async #fetchOnce(rel: FederationRelationship): Promise<RefreshResult> {
    const { store, clock, policy } = this.#o;
    const startedAt = clock.now();
    let current: Bundle | null = null;
    try {
      current = await store.bundles.get(rel.trustDomain);
      const fetched = await fetchFederatedBundle(rel, {
        current,
        extraCaPem: this.#o.extraCaPem,
        now: startedAt,
        ...(this.#o.limits ? { limits: this.#o.limits } : {}),
      });
      const applied = await this.#apply(rel, fetched);
      const now = clock.now();
      const nextAttemptAt = now + refreshIntervalMs(fetched.refreshHint, policy);
      await this.#setStatus(rel, {
        lastFetchAt: startedAt,
        lastSuccessAt: now,
        lastError: '',
        nextAttemptAt,
        failures: 0,
      });
      if (applied.ignoredLowerSequence) {
        this.#o.log.warn(
          {
            trustDomain: rel.trustDomain,
            fetchedSequence: fetched.sequence,
            storedSequence: applied.bundle.sequence,
          },
          'federated bundle ignored: lower spiffe_sequence than the stored one',
        );
      }
      if (applied.updated) {
        this.#o.log.info(
          { trustDomain: rel.trustDomain, sequence: fetched.sequence },
          'federated bundle updated',
        );
        this.notifyBundleUpdated(rel.trustDomain, applied.bundle);
      }
      this.#o.onFetched(
        rel.trustDomain,
        applied.updated ? 'updated' : applied.ignoredLowerSequence ? 'ignored' : 'unchanged',
      );
      return { ok: true, ...applied, nextAttemptAt };
    } catch (e) {
      const error = messageOf(e).slice(0, MAX_STATUS_ERROR_CHARS);
      const failures = rel.status.failures + 1;
      const interval = refreshIntervalMs(current?.refreshHint, policy);
      const now = clock.now();
      const nextAttemptAt = now + backoffDelayMs(failures, interval, this.#o.random, policy);
      this.#o.log.warn(
        { trustDomain: rel.trustDomain, url: rel.bundleEndpointUrl, failures, err: error },
        'federated bundle fetch failed',
      );
      await this.#setStatus(rel, {
        lastFetchAt: startedAt,
        lastSuccessAt: rel.status.lastSuccessAt,
        lastError: error,
        nextAttemptAt,
        failures,
      });
      this.#o.onFetched(rel.trustDomain, 'failed');
      return { ok: false, error, nextAttemptAt };
    }
  }

  async #setStatus(rel: FederationRelationship, status: FederationStatus): Promise<void> {
    try {
      await this.#o.store.federations.setStatus(rel.trustDomain, status);
    } catch (e) {
      this.#o.log.warn(
        { trustDomain: rel.trustDomain, err: messageOf(e) },
        'could not record the federation fetch status',
      );
    }
  }

  /** Stores the fetched bundle unless it is older than (or the same as) the stored one. */
  async #apply(
    rel: FederationRelationship,
    fetched: Bundle,
  ): Promise<{ updated: boolean; ignoredLowerSequence: boolean; bundle: Bundle }> {
    return this.#o.store.transaction(async (tx) => {
      const stored = await tx.bundles.get(rel.trustDomain);
      if (stored && fetched.sequence < stored.sequence) {
        return { updated: false, ignoredLowerSequence: true, bundle: stored };
      }
      if (stored && bundleEquals(stored, fetched)) {
        // Same keys; a higher sequence alone is recorded quietly.
        if (fetched.sequence !== stored.sequence) await tx.bundles.putIfNotOlder(fetched);
        return { updated: false, ignoredLowerSequence: false, bundle: fetched };
      }
      // Conditional: another server may have stored a newer bundle since the read above.
      if (!(await tx.bundles.putIfNotOlder(fetched))) {
        const newer = (await tx.bundles.get(rel.trustDomain)) ?? fetched;
        return { updated: false, ignoredLowerSequence: true, bundle: newer };
      }
      await this.#o.auditor.record(tx, systemContext(rel.trustDomain), {
        action: 'federation.bundle.updated',
        target: rel.trustDomain,
        outcome: 'success',
        details: {
          endpoint: rel.bundleEndpointUrl,
          profile: rel.profile,
          sequence: fetched.sequence,
          previousSequence: stored ? stored.sequence : null,
          x509Authorities: fetched.x509Authorities.length,
          jwtAuthorities: fetched.jwtAuthorities.length,
        },
      });
      return { updated: true, ignoredLowerSequence: false, bundle: fetched };
    });
  }
}

/** Identifies a bundle's content (keys, sequence, hint) for change detection. */
function fingerprint(b: Bundle): string {
  const h = createHash('sha256');
  h.update(`${b.trustDomain}\n${b.sequence}\n${b.refreshHint}\n`);
  for (const a of b.x509Authorities) h.update(`x ${a.tainted}\n`).update(a.der);
  for (const k of b.jwtAuthorities) {
    h.update(`j ${k.kid.length}:${k.kid} ${k.expiresAt} ${k.tainted}\n`).update(k.publicKeyDer);
  }
  return h.digest('hex');
}

/** Fetches are the server's own doing, not a caller's. */
function systemContext(trustDomain: string): RequestContext {
  return { caller: { kind: 'local-admin' }, correlationId: `federation:${trustDomain}` };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
