// The agent's synced state — its authorized entries, its own trust bundle and the federated
// bundles its entries federate with — persisted in its data dir, so that a restarted agent still
// knows, while the server is away, which callers match which entries and which federated trust
// domains they may use. One file, sync-state.json, 0600, replaced atomically:
//   {"version": 1, "trust_domain": "<td>", "entries": [<tessera.v1.Entry>...],
//    "bundle": <tessera.v1.Bundle> | null, "federated_bundles": [<tessera.v1.Bundle>...],
//    "server_workloads": [<tessera.v1.ServerWorkload>...]}
// (entries and bundles in the proto3 JSON form of the sync API's own messages, read back through
// the same wire → domain checks as what the server sends). Writes are coalesced by
// CoalescingWriter: entry deltas can be frequent, the file is written at most once per delay and
// never twice at the same time.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { create, fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import type { Bundle } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { bundleToSpiffeJson } from '../../crypto/bundle-format.ts';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { BundleSchema, EntrySchema } from '../../../proto/gen/tessera/v1/types_pb.js';
import { ServerWorkloadSchema } from '../../../proto/gen/tessera/v1/access_pb.js';
import type { ServerWorkload } from '../../core/access.ts';
import { serverWorkloadRecordFromWire, serverWorkloadToWire } from '../../wire/access.ts';
import { MAX_FEDERATED_BUNDLES } from './entry-sync.ts';
import { bundleFromWire, bundleToWire } from '../../wire/bundle.ts';
import { entryFromWire, entryToWire } from '../../wire/entry.ts';
import { federatedBundleFromWire } from './federated-bundle.ts';

export const SYNC_STATE_FILE = 'sync-state.json';
/** Where earlier versions kept the federated bundles alone; removed at start (sync refills it). */
/** Bounds what load() reads: a corrupt or planted huge file must not exhaust memory. */
export const MAX_SYNC_STATE_FILE_BYTES = 64 * 1024 * 1024;
/** The most entries the server takes as `known` (server/sync/agent-sync.ts MAX_KNOWN); more is corrupt. */
export const MAX_RESTORED_ENTRIES = 100_000;
/** The most server workloads restored; more is corrupt. */
export const MAX_RESTORED_SERVER_WORKLOADS = 100_000;
const VERSION = 1;

export interface SyncState {
  /** In arrival order (the tie-break between entries created in the same second). */
  readonly entries: ReadonlyMap<string, Entry>;
  readonly bundle: Bundle | null;
  readonly federatedBundles: ReadonlyMap<string, Bundle>;
  /** The server workloads the proxy may reach (absent in files of earlier versions). */
  readonly serverWorkloads?: readonly ServerWorkload[];
}

export class SyncStateFile {
  readonly file: string;
  readonly #trustDomain: string;

  constructor(dataDir: string, trustDomain: string) {
    this.file = path.join(dataDir, SYNC_STATE_FILE);
    this.#trustDomain = trustDomain;
  }

  /** The persisted state, or null when there is none. Throws InvalidArgumentError when unusable. */
  async load(): Promise<SyncState | null> {
    const bad = (why: string) => new InvalidArgumentError(`${this.file}: ${why}`);
    let text: string;
    try {
      const size = (await stat(this.file)).size;
      if (size > MAX_SYNC_STATE_FILE_BYTES)
        throw bad(`${size} bytes, larger than ${MAX_SYNC_STATE_FILE_BYTES}`);
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    // Read with a bound too: the file may have grown since stat.
    if (text.length > MAX_SYNC_STATE_FILE_BYTES)
      throw bad(`larger than ${MAX_SYNC_STATE_FILE_BYTES} bytes`);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw bad(`not valid JSON (${(e as Error).message})`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw bad('not a JSON object');
    const d = doc as Record<string, unknown>;
    if (d.version !== VERSION) throw bad(`unsupported version ${JSON.stringify(d.version)}`);
    if (d.trust_domain !== this.#trustDomain)
      throw bad(`holds the state of another trust domain (${String(d.trust_domain).slice(0, 80)})`);
    const entriesJson = d.entries;
    const federatedJson = d.federated_bundles;
    if (!Array.isArray(entriesJson)) throw bad('"entries" is missing or not an array');
    if (entriesJson.length > MAX_RESTORED_ENTRIES)
      throw bad(`more than ${MAX_RESTORED_ENTRIES} entries`);
    if (!Array.isArray(federatedJson)) throw bad('"federated_bundles" is missing or not an array');
    if (federatedJson.length > MAX_FEDERATED_BUNDLES)
      throw bad(`more than ${MAX_FEDERATED_BUNDLES} federated bundles`);

    const entries = new Map<string, Entry>();
    entriesJson.forEach((j, i) => {
      const e = part(`entries[${i}]`, () => entryFromWire(fromJson(EntrySchema, j as JsonValue)));
      if (e.id === '') throw bad(`entries[${i}]: no id`);
      if (entries.has(e.id)) throw bad(`entries[${i}]: duplicate id "${e.id.slice(0, 80)}"`);
      entries.set(e.id, e);
    });
    let bundle: Bundle | null = null;
    if (d.bundle !== null && d.bundle !== undefined) {
      bundle = part('bundle', () => {
        const b = bundleFromWire(fromJson(BundleSchema, d.bundle as JsonValue));
        if (b.trustDomain !== this.#trustDomain) throw new Error('not the own trust domain');
        bundleToSpiffeJson(b); // parses every certificate and key once
        return b;
      });
    }
    const federatedBundles = new Map<string, Bundle>();
    federatedJson.forEach((j, i) => {
      const b = part(`federated_bundles[${i}]`, () =>
        federatedBundleFromWire(fromJson(BundleSchema, j as JsonValue), this.#trustDomain),
      );
      if (federatedBundles.has(b.trustDomain))
        throw bad(`federated_bundles[${i}]: duplicate trust domain "${b.trustDomain}"`);
      federatedBundles.set(b.trustDomain, b);
    });
    const serverWorkloadsJson = d.server_workloads ?? [];
    if (!Array.isArray(serverWorkloadsJson)) throw bad('"server_workloads" is not an array');
    if (serverWorkloadsJson.length > MAX_RESTORED_SERVER_WORKLOADS)
      throw bad(`more than ${MAX_RESTORED_SERVER_WORKLOADS} server workloads`);
    const serverWorkloads = serverWorkloadsJson.map((j, i) =>
      part(`server_workloads[${i}]`, () =>
        serverWorkloadRecordFromWire(fromJson(ServerWorkloadSchema, j as JsonValue)),
      ),
    );
    return { entries, bundle, federatedBundles, serverWorkloads };

    function part<T>(where: string, fn: () => T): T {
      try {
        return fn();
      } catch (e) {
        throw bad(`${where}: ${(e as Error).message}`);
      }
    }
  }

  /** Replaces the file (atomically, 0600). */
  async save(state: SyncState): Promise<void> {
    const doc = {
      version: VERSION,
      trust_domain: this.#trustDomain,
      entries: [...state.entries.values()].map((e) =>
        toJson(EntrySchema, create(EntrySchema, entryToWire(e))),
      ),
      bundle: state.bundle
        ? toJson(BundleSchema, create(BundleSchema, bundleToWire(state.bundle)))
        : null,
      federated_bundles: [...state.federatedBundles.values()]
        .sort((a, b) => a.trustDomain.localeCompare(b.trustDomain))
        .map((b) => toJson(BundleSchema, create(BundleSchema, bundleToWire(b)))),
      server_workloads: (state.serverWorkloads ?? []).map((w) =>
        toJson(ServerWorkloadSchema, create(ServerWorkloadSchema, serverWorkloadToWire(w))),
      ),
    };
    await writeFileAtomic(this.file, JSON.stringify(doc), 0o600);
  }
}

export interface CoalescingWriterOptions {
  /** Writes the current state (read when the write starts, so it is always the latest). */
  write: () => Promise<void>;
  /** How long after a change the write starts; changes meanwhile join it. */
  delayMs: number;
  /** After a failed write, the next attempt waits this long (default 10 × delayMs). */
  retryMs?: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Debounces and serializes writes: `schedule()` after every change; at most one write in flight;
 * changes during a write cause one more write after it. A failed write is logged and retried.
 */
export class CoalescingWriter {
  readonly #o: CoalescingWriterOptions;
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> | null = null;
  #closed = false;
  /** Completed write attempts (for tests and metrics). */
  attempts = 0;

  constructor(o: CoalescingWriterOptions) {
    this.#o = o;
  }

  schedule(): void {
    this.#dirty = true;
    if (this.#timer || this.#writing || this.#closed) return;
    this.#arm(this.#o.delayMs);
  }

  /** Writes now what is pending (waiting for a write in flight first); no timer stays armed. */
  async flush(): Promise<void> {
    this.#disarm();
    while (this.#writing) await this.#writing;
    this.#disarm();
    if (this.#dirty) await this.#write();
    this.#disarm();
  }

  /** flush(), then ignore further changes. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#write();
    }, ms);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #write(): Promise<void> {
    if (this.#writing || !this.#dirty) return;
    this.#dirty = false;
    let failed = false;
    const run = async () => {
      try {
        await this.#o.write();
      } catch (e) {
        failed = true;
        this.#dirty = true;
        this.#o.log('could not persist the sync state; will retry', {
          err: (e as Error).message,
        });
      } finally {
        this.attempts++;
      }
    };
    this.#writing = run();
    await this.#writing;
    this.#writing = null;
    if (this.#dirty && !this.#closed && !this.#timer)
      this.#arm(failed ? (this.#o.retryMs ?? this.#o.delayMs * 10) : this.#o.delayMs);
  }
}
