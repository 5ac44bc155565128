// Keeps the agent's copy of its authorized entries, of the trust bundle and of the federated
// bundles its entries federate with current from the server's SyncAuthorizedEntries stream: a
// full set first (only what differs from what the agent holds), then deltas. Never polls full
// lists. Reconnects with backoff when the stream breaks, but at once when the server answers
// another call again (`serverBack`): the backoff spares a failing server, not one that is back.
import { Code, ConnectError } from '@connectrpc/connect';
import { type Bundle, bundleEquals } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';
import type { SyncAuthorizedEntriesResponse } from '../../../proto/gen/tessera/v1/sync_pb.js';
import { type Backoff, defaultSleep } from '../../client/workload/backoff.ts';
import type { ServerClients } from '../identity/server-link.ts';
import type { SyncState } from './sync-state-file.ts';
import { bundleFromWire } from '../../wire/bundle.ts';
import { entryFromWire } from '../../wire/entry.ts';
import { federatedBundleFromWire } from './federated-bundle.ts';

/** More federated bundles than this from one server are ignored (and logged). */
export const MAX_FEDERATED_BUNDLES = 1000;

export interface EntrySyncOptions {
  clients: () => ServerClients;
  /**
   * Called when the server refuses the agent (banned, evicted), with the clients the refused
   * stream used (null if none were built): the agent's lifecycle decides.
   */
  onRefused: (e: ConnectError, used: ServerClients | null) => Promise<void>;
  onBundle: (b: Bundle) => Promise<void>;
  /** The agent's own trust domain: a federated bundle for it is refused. */
  trustDomain: string;
  /** Called with the complete set whenever a federated bundle arrived, changed or was dropped. */
  onFederatedBundles?: (bundles: ReadonlyMap<string, Bundle>) => Promise<void>;
  backoff: Backoff;
  /**
   * Subscribes to "the server answers again" (any call succeeded after one found it unreachable);
   * returns an unsubscribe. A broken stream is reported through `onFailure` first.
   */
  serverBack?: (fn: () => void) => () => void;
  onFailure?: (e: unknown, used: ServerClients | null) => void;
  /**
   * Each message's `access_revision` and whether it is the stream's initial message (the agent's
   * credential cache drops everything on a change and on every (re)connect).
   */
  onAccessRevision?: (revision: bigint, initial: boolean) => void;
  /** Each message's `posture_revision` when set (and the initial one's): entry conditions. */
  onPostureRevision?: (revision: bigint) => void;
  /**
   * The server's record of this agent's node changed in what conditions see (`node_fingerprint`
   * differs from the last one seen, across reconnects): entry conditions are asked again and
   * cached credentials dropped. Not called for the first value.
   */
  onNodeChange?: () => void;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export class EntrySync {
  readonly #o: EntrySyncOptions;
  readonly #entries = new Map<string, Entry>();
  #bundle: Bundle | null = null;
  #federated: ReadonlyMap<string, Bundle> = new Map();
  #synced = false;
  /** What the current stream's request declared as known (id → revision). */
  #declared: ReadonlyMap<string, bigint> = new Map();
  readonly #listeners = new Set<() => void>();
  /** A server-back wake-up ended a wait since the stream last delivered a message. */
  #woken = false;
  /** The last node_fingerprint the server sent (0: none yet). */
  #nodeFingerprint = 0n;

  constructor(o: EntrySyncOptions) {
    this.#o = o;
  }

  get entries(): ReadonlyMap<string, Entry> {
    return this.#entries;
  }

  get bundle(): Bundle | null {
    return this.#bundle;
  }

  /** Federated bundles by trust domain name; the map is replaced on change, never mutated. */
  get federatedBundles(): ReadonlyMap<string, Bundle> {
    return this.#federated;
  }

  /**
   * Starts from the persisted state (before run): served until the server answers. The first
   * stream declares these entries as `known`, so the server sends only what differs, and its
   * initial message then decides what stays.
   */
  restore(state: SyncState): void {
    this.#entries.clear();
    for (const [id, e] of state.entries) this.#entries.set(id, e);
    if (state.bundle?.trustDomain === this.#o.trustDomain) this.#bundle = state.bundle;
    this.#federated = new Map(
      [...state.federatedBundles]
        .filter(([td]) => td !== this.#o.trustDomain)
        .slice(0, MAX_FEDERATED_BUNDLES),
    );
    for (const fn of this.#listeners) fn();
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
      let clients: ServerClients | null = null;
      let retryInMs: number | null = null;
      try {
        clients = this.#o.clients();
        await this.#stream(clients, signal);
      } catch (e) {
        if (signal.aborted) return;
        this.#o.onFailure?.(e, clients);
        retryInMs = this.#o.backoff.next();
        const ce = ConnectError.from(e);
        if (ce.code === Code.PermissionDenied || ce.code === Code.Unauthenticated)
          await this.#o.onRefused(ce, clients);
        else
          this.#o.log('entry sync interrupted; retrying', {
            code: Code[ce.code],
            reason: ce.rawMessage,
            retryInMs,
          });
      }
      await this.#wait(retryInMs ?? this.#o.backoff.next(), signal);
    }
  }

  /**
   * Waits out the backoff, or less: the first answer the server gives another call (after this
   * failure) ends the wait. Once per failure streak, so a server that answers but keeps failing
   * the stream is still retried with backoff.
   */
  async #wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#woken || !this.#o.serverBack) return defaultSleep(ms, signal);
    const back = new AbortController();
    const unsubscribe = this.#o.serverBack(() => back.abort());
    try {
      await defaultSleep(ms, AbortSignal.any([signal, back.signal]));
    } finally {
      unsubscribe();
    }
    if (back.signal.aborted && !signal.aborted) {
      this.#woken = true;
      this.#o.log('the server answers again; entry sync reconnects now', { insteadOfMs: ms });
    }
  }

  async #stream(clients: ServerClients, signal: AbortSignal): Promise<void> {
    const known: Record<string, bigint> = {};
    for (const [id, e] of this.#entries) known[id] = BigInt(e.revision);
    this.#declared = new Map(Object.entries(known));
    for await (const msg of clients.sync.syncAuthorizedEntries({ known }, { signal })) {
      await this.apply(msg);
      this.#o.backoff.reset();
      this.#woken = false;
    }
  }

  /** Applies one stream message (exported for tests). */
  async apply(msg: SyncAuthorizedEntriesResponse): Promise<void> {
    // The initial message is the server's complete answer to what the request declared: it
    // upserts what differs and removes what is gone. Anything held that was not declared (or has
    // changed since) is not covered by it, so it is dropped.
    if (msg.initial) {
      for (const [id, e] of [...this.#entries]) {
        if (this.#declared.get(id) !== BigInt(e.revision)) this.#entries.delete(id);
      }
      this.#declared = new Map();
    }
    for (const w of msg.upserted) this.#entries.set(w.id, entryFromWire(w));
    for (const id of msg.removed) this.#entries.delete(id);
    if (msg.bundle) {
      this.#bundle = bundleFromWire(msg.bundle);
      await this.#o.onBundle(this.#bundle);
    }
    await this.#applyFederated(msg);
    this.#o.onAccessRevision?.(msg.accessRevision, msg.initial);
    if (msg.initial || msg.postureRevision !== 0n) this.#o.onPostureRevision?.(msg.postureRevision);
    if (msg.nodeFingerprint !== 0n && msg.nodeFingerprint !== this.#nodeFingerprint) {
      const first = this.#nodeFingerprint === 0n;
      this.#nodeFingerprint = msg.nodeFingerprint;
      if (!first) this.#o.onNodeChange?.();
    }
    this.#synced ||= msg.initial;
    for (const fn of this.#listeners) fn();
  }

  /** The initial message carries the complete set (anything else is dropped); later ones deltas. */
  async #applyFederated(msg: SyncAuthorizedEntriesResponse): Promise<void> {
    const next = new Map(msg.initial ? [] : this.#federated);
    for (const td of msg.federatedBundlesRemoved) next.delete(td);
    for (const w of msg.federatedBundles) {
      if (!next.has(w.trustDomain) && next.size >= MAX_FEDERATED_BUNDLES) {
        this.#o.log('too many federated bundles; ignoring the rest', {
          max: MAX_FEDERATED_BUNDLES,
        });
        break;
      }
      try {
        const b = federatedBundleFromWire(w, this.#o.trustDomain);
        next.set(b.trustDomain, b);
      } catch (e) {
        this.#o.log('ignoring a federated bundle the server sent', {
          reason: (e as Error).message,
        });
      }
    }
    if (sameBundles(this.#federated, next)) return;
    this.#federated = next;
    await this.#o.onFederatedBundles?.(next);
  }
}

function sameBundles(a: ReadonlyMap<string, Bundle>, b: ReadonlyMap<string, Bundle>): boolean {
  if (a.size !== b.size) return false;
  for (const [td, x] of a) {
    const y = b.get(td);
    if (!y || x.sequence !== y.sequence || !bundleEquals(x, y)) return false;
  }
  return true;
}
