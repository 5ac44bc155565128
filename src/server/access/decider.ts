// The live AccessDecider: decisions over an in-memory index of the compiled policies (policy-
// index.ts), kept fresh from the datastore.
//
// Freshness. A committed write to server workloads, providers, policies or secrets announces the
// `access` commit topic (this server at once, other servers sharing PostgreSQL by NOTIFY); each
// announcement asks for a reload, and a burst of them costs the reload in progress plus at most
// one more (core/coalesce.ts). Until a reload completes, decisions use the last complete index —
// never a half-built one. `sync()` waits for the reload that started after the latest
// announcement, so the broker, awaiting it before deciding, sees an admin change made on this
// server before the admin call returned ("delete policy → next release denied"). When that reload
// fails, sync() rejects: the broker refuses rather than decide on a set known to be stale. run()
// polls as the fallback for announcements lost across servers, and retries a failed reload.
import type {
  AccessDecider,
  AccessDecision,
  AccessPolicy,
  AccessRequest,
  ServerWorkload,
} from '../../core/access.ts';
import { coalesce, type Coalesced } from '../../core/coalesce.ts';
import { UnavailableError } from '../../core/errors.ts';
import type { CommitNotifications } from '../../store/types.ts';
import { buildPolicyIndex, decideAccess, type PolicyIndex } from './policy-index.ts';

/** What the decider reads: the whole model, each call a fresh read of the datastore. */
export interface AccessPolicySource {
  listServerWorkloads(): Promise<ServerWorkload[]>;
  listPolicies(): Promise<AccessPolicy[]>;
}

/** The source over the access store (StoreAggregates.access): the whole model, fresh each call. */
export function accessPolicySource(access: {
  listServerWorkloads(): Promise<ServerWorkload[]>;
  listAccessPolicies(): Promise<AccessPolicy[]>;
}): AccessPolicySource {
  return {
    listServerWorkloads: () => access.listServerWorkloads(),
    listPolicies: () => access.listAccessPolicies(),
  };
}

export interface DeciderLog {
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface PolicyDeciderOptions {
  readonly source: AccessPolicySource;
  /** The store's commit notifications; without them only run()'s poll refreshes. */
  readonly notifications?: CommitNotifications;
  readonly log: DeciderLog;
  /** run(): reload this often regardless of announcements. Default 30 s. */
  readonly pollIntervalMs?: number;
  /** run(): after a failed reload, retry this soon. Default 1 s. */
  readonly retryMs?: number;
}

export class PolicyDecider implements AccessDecider {
  readonly #o: PolicyDeciderOptions;
  #index: PolicyIndex;
  #generation = 1;
  readonly #reload: Coalesced;
  /** The reload asked for by the latest announcement, until it succeeds. */
  #pending: Promise<void> | null = null;
  #failed = false;
  #unsubscribe: () => void = () => {};

  private constructor(o: PolicyDeciderOptions, index: PolicyIndex) {
    this.#o = o;
    this.#index = index;
    this.#reload = coalesce(() => this.#load());
  }

  /** Loads the policy set (throws when the datastore cannot be read) and follows announcements. */
  static async create(o: PolicyDeciderOptions): Promise<PolicyDecider> {
    const d = new PolicyDecider(o, { servers: new Map(), size: 0 });
    // Subscribe before the first read, so a write committed during it is not missed.
    d.#unsubscribe =
      o.notifications?.subscribe('access', () => void d.refresh().catch(() => {})) ??
      d.#unsubscribe;
    try {
      await d.#load();
    } catch (e) {
      d.#unsubscribe();
      throw e;
    }
    return d;
  }

  decide(req: AccessRequest): AccessDecision {
    return decideAccess(this.#index, req);
  }

  /**
   * Resolves once every announcement made before the call is reflected in the index (at once
   * when none is outstanding). Rejects with UnavailableError when that reload failed.
   */
  sync(): Promise<void> {
    return this.#pending ?? Promise.resolve();
  }

  /** Asks for a reload and waits for one that started after the call. */
  refresh(): Promise<void> {
    const p = this.#reload().then(
      () => {
        if (this.#pending === p) this.#pending = null;
      },
      (e: unknown) => {
        throw new UnavailableError('access policies could not be reloaded', { cause: e });
      },
    );
    this.#pending = p;
    return p;
  }

  /** Policies in the index, and how many complete loads have replaced it (for tests, metrics). */
  get stats(): { policies: number; generation: number } {
    return { policies: this.#index.size, generation: this.#generation };
  }

  /** Polls (and retries a failed reload) until `signal` aborts; then stops following. */
  async run(signal: AbortSignal): Promise<void> {
    const poll = this.#o.pollIntervalMs ?? 30_000;
    const retry = this.#o.retryMs ?? 1_000;
    try {
      while (!signal.aborted) {
        await sleep(this.#failed ? Math.min(retry, poll) : poll, signal);
        if (signal.aborted) break;
        await this.refresh().catch(() => {}); // logged by #load
      }
    } finally {
      this.#unsubscribe();
    }
  }

  async #load(): Promise<void> {
    let servers: ServerWorkload[];
    let policies: AccessPolicy[];
    try {
      [servers, policies] = await Promise.all([
        this.#o.source.listServerWorkloads(),
        this.#o.source.listPolicies(),
      ]);
    } catch (e) {
      this.#failed = true;
      this.#o.log.warn(
        { err: e instanceof Error ? e.message : String(e) },
        'access policies could not be reloaded; deciding on the last loaded set',
      );
      throw e;
    }
    const built = buildPolicyIndex(servers, policies);
    for (const s of built.skipped)
      this.#o.log.warn(
        { policy: s.policy, error: s.error },
        s.keptAsDeny
          ? 'access policy condition does not compile: the policy denies every client it matches'
          : 'access policy skipped: it does not compile or names an unknown server workload',
      );
    this.#index = built.index;
    this.#generation++;
    this.#failed = false;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
