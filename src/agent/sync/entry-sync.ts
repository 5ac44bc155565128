// Keeps the agent's copy of its authorized entries and of the trust bundle current from the
// server's SyncAuthorizedEntries stream: a full set first (only what differs from what the agent
// holds), then deltas. Never polls full lists. Reconnects with backoff when the stream breaks.
import { Code, ConnectError } from '@connectrpc/connect';
import type { Bundle } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';
import type { SyncAuthorizedEntriesResponse } from '../../../proto/gen/tessera/v1/sync_pb.js';
import { type Backoff, defaultSleep } from '../../client/workload/backoff.ts';
import type { ServerClients } from '../identity/server-link.ts';
import { bundleFromWire, entryFromWire } from './wire.ts';

export interface EntrySyncOptions {
  clients: () => ServerClients;
  /** Called when the server refuses the agent (banned, evicted): the supervisor decides. */
  onRefused: (e: ConnectError) => Promise<void>;
  onBundle: (b: Bundle) => Promise<void>;
  backoff: Backoff;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export class EntrySync {
  readonly #o: EntrySyncOptions;
  readonly #entries = new Map<string, Entry>();
  #bundle: Bundle | null = null;
  #synced = false;
  readonly #listeners = new Set<() => void>();

  constructor(o: EntrySyncOptions) {
    this.#o = o;
  }

  get entries(): ReadonlyMap<string, Entry> {
    return this.#entries;
  }

  get bundle(): Bundle | null {
    return this.#bundle;
  }

  /** True once the first full set has arrived. */
  get synced(): boolean {
    return this.#synced;
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#stream(signal);
      } catch (e) {
        if (signal.aborted) return;
        const ce = ConnectError.from(e);
        if (ce.code === Code.PermissionDenied || ce.code === Code.Unauthenticated)
          await this.#o.onRefused(ce);
        else
          this.#o.log('entry sync interrupted; retrying', {
            code: Code[ce.code],
            reason: ce.rawMessage,
          });
      }
      await defaultSleep(this.#o.backoff.next(), signal);
    }
  }

  async #stream(signal: AbortSignal): Promise<void> {
    const known: Record<string, bigint> = {};
    for (const [id, e] of this.#entries) known[id] = BigInt(e.revision);
    for await (const msg of this.#o.clients().sync.syncAuthorizedEntries({ known }, { signal })) {
      await this.apply(msg);
      this.#o.backoff.reset();
    }
  }

  /** Applies one stream message (exported for tests). */
  async apply(msg: SyncAuthorizedEntriesResponse): Promise<void> {
    for (const w of msg.upserted) this.#entries.set(w.id, entryFromWire(w));
    for (const id of msg.removed) this.#entries.delete(id);
    if (msg.bundle) {
      this.#bundle = bundleFromWire(msg.bundle);
      await this.#o.onBundle(this.#bundle);
    }
    this.#synced ||= msg.initial;
    for (const fn of this.#listeners) fn();
  }
}
