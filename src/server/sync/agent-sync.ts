// What an agent is sent: its authorized entries, the trust bundle and the federated bundles its
// entries federate with — once (GetAuthorizedEntries) or as a stream (SyncAuthorizedEntries): the
// full set first (only what differs from what the agent already holds), then deltas whenever the
// index, the bundle or a federated bundle changes, so the agent never polls full lists. A ban or
// eviction ends the open stream. Every message after a change of the access revision carries it
// (and the first one), so agents drop cached credentials. A change of the agent's node record
// that conditions can see (re-attested with other selectors) is sent as its node fingerprint, and
// entries authorized through node aliases follow the new selectors. The Connect handler
// (api/handlers/sync-handlers.ts) only adapts.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type {
  GetAuthorizedEntriesResponseSchema,
  SyncAuthorizedEntriesResponseSchema,
} from '../../../proto/gen/tessera/v1/sync_pb.js';
import { AsyncQueue } from '../../core/async-queue.ts';
import type { Entry } from '../../core/entry.ts';
import type { AttestedNode } from '../../core/node.ts';
import { UnavailableError } from '../../core/errors.ts';
import { AgentRefusedError } from '../../core/refusal.ts';
import type { NodeStore } from '../../store/types.ts';
import { bundleToWire } from '../../wire/bundle.ts';
import { entryToWire } from '../../wire/entry.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import type { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import { nodeFingerprint } from '../posture/node-fingerprint.ts';
import type { SvidService } from '../svid/svid-service.ts';
import {
  type FederatedDelta,
  FederatedBundlesSent,
  federatedBundlesFor,
} from './federated-sync.ts';

export type SyncOut = MessageInitShape<typeof SyncAuthorizedEntriesResponseSchema>;
type AuthorizedOut = MessageInitShape<typeof GetAuthorizedEntriesResponseSchema>;

/** The access revision streams send (sync/access-revision-feed.ts). */
export interface AccessRevisionSource {
  readonly current: number;
  onChange(fn: (revision: number) => void): () => void;
}

const NO_ACCESS_REVISION: AccessRevisionSource = { current: 0, onChange: () => () => {} };

/** Entries an agent may claim to hold already; more are ignored (it is sent them again). */
const MAX_KNOWN = 100_000;

export interface AgentSyncDeps {
  readonly svids: Pick<SvidService, 'authorizedEntries'>;
  readonly index: Pick<EntryIndex, 'onChange' | 'onNodesChange'>;
  readonly bundles: BundleCache;
  readonly federated: FederatedBundleCache;
  readonly nodes: Pick<NodeStore, 'get'>;
  /** Agents drop cached credentials when it differs from the last value they saw. */
  readonly access?: AccessRevisionSource;
  /** Agents re-check entry conditions when it differs (posture/posture-index.ts). */
  readonly posture?: AccessRevisionSource;
}

/** The syncing agent, as authenticated at the edge. */
export interface SyncingAgent {
  readonly spiffeId: string;
  readonly node: AttestedNode;
  /** Serial number of the SVID the stream was opened with ('' or absent: not checked). */
  readonly serial?: string;
}

export class AgentSync {
  readonly #d: AgentSyncDeps;

  constructor(d: AgentSyncDeps) {
    this.#d = d;
  }

  /** Everything the agent is authorized for, now. */
  authorized(agent: SyncingAgent): AuthorizedOut {
    const entries = this.#d.svids.authorizedEntries(agent.node);
    return {
      entries: entries.map(entryToWire),
      bundle: bundleToWire(this.#d.bundles.bundle),
      federatedBundles: [...federatedBundlesFor(entries, this.#d.federated).values()].map(
        bundleToWire,
      ),
    };
  }

  /**
   * The stream: `known` (entry id → revision, untrusted, from the agent) is what it holds. The
   * first message carries what differs from it, the bundle and the complete federated set; later
   * ones, changes only (federated bundles as upserts and removals). Ends when `signal` aborts;
   * fails with AgentRefusedError when the agent is banned or evicted.
   */
  async *stream(
    agent: SyncingAgent,
    knownIn: Record<string, bigint>,
    signal: AbortSignal,
  ): AsyncGenerator<SyncOut> {
    const { svids, index, bundles, federated, nodes } = this.#d;
    const access = this.#d.access ?? NO_ACCESS_REVISION;
    const posture = this.#d.posture ?? NO_ACCESS_REVISION;
    const known = new Map<string, bigint>(Object.entries(knownIn).slice(0, MAX_KNOWN));
    const sent = new FederatedBundlesSent();
    const wake = new AsyncQueue<'entries' | 'bundle' | 'federated' | 'node' | 'access' | 'posture'>(
      10_000,
    );
    const offIndex = index.onChange(() => wake.push('entries'));
    // A ban or eviction ends the open stream too, not only the agent's next call.
    const offNodes = index.onNodesChange((ids) => {
      if (ids.includes(agent.spiffeId)) wake.push('node');
    });
    const offBundle = bundles.onChange(() => wake.push('bundle'));
    const offFederated = federated.onChange(() => wake.push('federated'));
    const offAccess = access.onChange(() => wake.push('access'));
    const offPosture = posture.onChange(() => wake.push('posture'));
    let accessSent = access.current;
    let postureSent = posture.current;
    // The node as last read: its selectors decide node-alias entries and what conditions see.
    let node = agent.node;
    let nodeSent = nodeFingerprint(node);
    signal.addEventListener('abort', () => wake.close());
    const next = (initial: boolean, withBundle: boolean): SyncOut => {
      const entries = svids.authorizedEntries(node);
      const fed = sent.next(federatedBundlesFor(entries, federated));
      return diff(entries, known, initial, withBundle ? bundles : null, fed);
    };
    try {
      yield {
        ...next(true, true),
        accessRevision: BigInt(accessSent),
        postureRevision: BigInt(postureSent),
        nodeFingerprint: nodeSent,
      };
      let pendingBundle = false;
      for await (const why of wake) {
        let nodeChanged = false;
        if (why === 'node') {
          const stored = await nodes.get(agent.spiffeId);
          if (!stored) {
            throw new AgentRefusedError('agent_evicted', `agent ${agent.spiffeId} was evicted`);
          }
          if (stored.banned) {
            throw new AgentRefusedError('agent_banned', `agent ${agent.spiffeId} is banned`);
          }
          // The SVID this stream was opened with is no longer the node's: renewed, or another
          // holder of the evidence attested as this node (allow_reattestation). The stream ends;
          // the agent reconnects with its current SVID, and one that was superseded is refused
          // there (agent_svid_superseded), as on any other call.
          const serial = agent.serial ?? '';
          if (
            serial !== '' &&
            serial !== stored.serialNumber &&
            serial !== stored.newSerialNumber
          ) {
            throw new UnavailableError(
              `agent ${agent.spiffeId}: the SVID this stream was opened with is no longer current; reconnect`,
            );
          }
          // Renewals change the record too; only a change conditions can see is sent.
          const fingerprint = nodeFingerprint(stored);
          if (fingerprint === nodeSent) continue;
          node = stored;
          nodeSent = fingerprint;
          nodeChanged = true;
        }
        pendingBundle ||= why === 'bundle';
        const msg = next(false, pendingBundle);
        pendingBundle = false;
        if (nodeChanged) msg.nodeFingerprint = nodeSent;
        if (access.current !== accessSent) {
          accessSent = access.current;
          msg.accessRevision = BigInt(accessSent);
        }
        if (posture.current !== postureSent) {
          postureSent = posture.current;
          msg.postureRevision = BigInt(postureSent);
        }
        if (
          msg.accessRevision !== undefined ||
          msg.postureRevision !== undefined ||
          msg.nodeFingerprint !== undefined ||
          msg.upserted?.length ||
          msg.removed?.length ||
          msg.bundle ||
          msg.federatedBundles?.length ||
          msg.federatedBundlesRemoved?.length
        )
          yield msg;
      }
    } finally {
      offIndex();
      offNodes();
      offBundle();
      offFederated();
      offAccess();
      offPosture();
    }
  }
}

/** Updates `known` (id → revision) to `current` and returns what changed. */
function diff(
  current: Entry[],
  known: Map<string, bigint>,
  initial: boolean,
  bundles: BundleCache | null,
  federated: FederatedDelta,
): SyncOut {
  const upserted: Entry[] = [];
  const seen = new Set<string>();
  for (const e of current) {
    seen.add(e.id);
    const rev = BigInt(e.revision);
    if (known.get(e.id) !== rev) {
      upserted.push(e);
      known.set(e.id, rev);
    }
  }
  const removed = [...known.keys()].filter((id) => !seen.has(id));
  for (const id of removed) known.delete(id);
  return {
    upserted: upserted.map(entryToWire),
    removed,
    initial,
    ...(bundles ? { bundle: bundleToWire(bundles.bundle) } : {}),
    federatedBundles: federated.upserted.map(bundleToWire),
    federatedBundlesRemoved: [...federated.removed],
  };
}
