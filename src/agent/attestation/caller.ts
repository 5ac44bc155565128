// What the attestation service hands to every door (Workload API, credential API, metadata
// endpoints, proxy): the calling process as the kernel names it, its selectors, and the entries
// those selectors match — decided once per call, so no door matches entries on its own.
import type { Entry } from '../../core/entry.ts';
import type { Selector } from '../../core/selector.ts';

/** The calling process as the kernel reports it, pinned against PID reuse (process-pin.ts). */
export interface CallerProcess {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** An attested caller: frozen, shared by every consumer of the call. */
export interface AttestedCaller {
  readonly process: CallerProcess;
  /** How the connection reached us: a Unix-socket peer or a loopback TCP peer. */
  readonly transport: 'unix' | 'tcp';
  readonly selectors: readonly Selector[];
  /**
   * Attributes beyond selectors (core/attributes.ts: binary.sha256, library.<n>,
   * kernel.release, image.digest), flat strings as they travel to the server; {} when the agent
   * collects none.
   */
  readonly attributes?: Readonly<Record<string, string>>;
  /** Unexpired entries whose selectors are all among `selectors`, oldest first. */
  readonly entries: readonly Entry[];
}

/** Runs the workload attestors for a process: its selectors ([] when nothing is known). */
export interface SelectorSource {
  attest(caller: CallerProcess, signal: AbortSignal): Promise<Selector[]>;
}

/** Entries matching a set of selectors (entry-matcher.ts over the synced entries). */
export interface EntryMatcher {
  match(selectors: readonly Selector[]): readonly Entry[];
  /**
   * Changes whenever the entries change; absent: results are never reused. Lets a connection's
   * repeated calls reuse their match while the entries stay as they were.
   */
  readonly generation?: number;
}
