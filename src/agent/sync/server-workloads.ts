// The server workloads this agent's proxy may reach (docs/injection.md), learned from the server
// (release.proto ListAgentServerWorkloads): fetched at start and whenever the sync stream's
// access revision moves or the stream reconnects, kept across restarts in the sync state file, so
// local listeners keep serving while the server is away.
//
// The index answers by name and by host:port (host compared case-insensitively, a trailing dot
// ignored, an IPv6 literal in its canonical text); cloud server workloads never match (the
// server does not send them).
import { isIPv6 } from 'node:net';
import type { ServerWorkload } from '../../core/access.ts';

export interface ServerWorkloadFetch {
  (signal: AbortSignal): Promise<{ serverWorkloads: ServerWorkload[]; revision: bigint }>;
}

export interface ServerWorkloadSyncOptions {
  readonly fetch: ServerWorkloadFetch;
  /** After a failed fetch, the next try waits this long (then doubles, up to maxRetryMs). */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  readonly log: (msg: string, fields?: Record<string, unknown>) => void;
}

/** `host:port` as the index keys it. */
export function addressKey(host: string, port: number): string {
  const h = host.toLowerCase();
  const bare = h.endsWith('.') ? h.slice(0, -1) : h;
  const unbracketed = bare.startsWith('[') && bare.endsWith(']') ? bare.slice(1, -1) : bare;
  // One text per IPv6 address: the server keeps a host as written (fd77:0:0::5), the kernel's
  // original destination (transparent redirect) arrives compressed (fd77::5).
  const canonical = isIPv6(unbracketed)
    ? new URL(`http://[${unbracketed}]/`).hostname.slice(1, -1)
    : unbracketed;
  return `${canonical}\u0000${port}`;
}

export class ServerWorkloadIndex {
  readonly #byName: ReadonlyMap<string, ServerWorkload>;
  readonly #byAddress: ReadonlyMap<string, ServerWorkload>;

  constructor(list: readonly ServerWorkload[]) {
    this.#byName = new Map(list.map((w) => [w.name, w]));
    const byAddress = new Map<string, ServerWorkload>();
    // Several server workloads at one address (path prefixes): the first by name answers the
    // address; the HTTP handler tells them apart by path.
    for (const w of [...list].sort((a, b) => (a.name < b.name ? -1 : 1)))
      if (w.host !== '' && !byAddress.has(addressKey(w.host, w.port)))
        byAddress.set(addressKey(w.host, w.port), w);
    this.#byAddress = byAddress;
  }

  byName(name: string): ServerWorkload | undefined {
    return this.#byName.get(name);
  }

  find(host: string, port: number): ServerWorkload | undefined {
    return this.#byAddress.get(addressKey(host, port));
  }

  get all(): readonly ServerWorkload[] {
    return [...this.#byName.values()];
  }
}

export class ServerWorkloadSync {
  readonly #o: ServerWorkloadSyncOptions;
  #index = new ServerWorkloadIndex([]);
  #revision: bigint | null = null;
  readonly #listeners = new Set<() => void>();
  #wanted = false;
  #wake: (() => void) | null = null;

  constructor(o: ServerWorkloadSyncOptions) {
    this.#o = o;
  }

  get index(): ServerWorkloadIndex {
    return this.#index;
  }

  /** The persisted list, until the server answers. */
  restore(list: readonly ServerWorkload[]): void {
    this.#index = new ServerWorkloadIndex(list);
    this.#notify();
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * The sync stream's access revision (as the credential cache sees it): a reconnect or a new
   * value asks for a fetch.
   */
  noteAccessRevision(revision: bigint, initial: boolean): void {
    if (!initial && (revision === 0n || revision === this.#revision)) return;
    this.#revision = revision;
    this.#wanted = true;
    this.#wake?.();
  }

  /** Fetches at start, then each time one is wanted, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    this.#wanted = true;
    let delay = this.#o.retryMs ?? 500;
    while (!signal.aborted) {
      if (!this.#wanted) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        this.#wake = null;
        continue;
      }
      this.#wanted = false;
      try {
        const got = await this.#o.fetch(signal);
        this.#index = new ServerWorkloadIndex(got.serverWorkloads);
        delay = this.#o.retryMs ?? 500;
        this.#notify();
      } catch (e) {
        if (signal.aborted) break;
        this.#wanted = true;
        this.#o.log('could not fetch the server workloads; keeping the last known', {
          err: (e as Error).message,
        });
        // A reconnected sync stream (noteAccessRevision) cuts the wait short.
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          void sleep(delay, signal).then(resolve);
        });
        this.#wake = null;
        delay = Math.min(delay * 2, this.#o.maxRetryMs ?? 30_000);
      }
    }
  }

  #notify(): void {
    for (const fn of this.#listeners) fn();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    t.unref();
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
