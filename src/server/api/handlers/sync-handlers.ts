import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Entry } from '../../../core/entry.ts';
import type { SyncService as SyncApi } from '../../../../proto/gen/tessera/v1/sync_pb.js';
import { type SyncAuthorizedEntriesResponseSchema } from '../../../../proto/gen/tessera/v1/sync_pb.js';
import type { BundleCache } from '../../authority/bundle-cache.ts';
import type { FederatedBundleCache } from '../../authority/federated-bundle-cache.ts';
import type { EntryIndex } from '../../registration/entry-index.ts';
import type { SvidService } from '../../svid/svid-service.ts';
import { AsyncQueue } from '../../../core/async-queue.ts';
import { AgentRefusedError } from '../../../core/refusal.ts';
import type { NodeStore } from '../../../store/types.ts';
import { agentCaller } from '../context-keys.ts';
import {
  type FederatedDelta,
  FederatedBundlesSent,
  federatedBundlesFor,
} from '../../sync/federated-sync.ts';
import { bundleToWire } from '../../../wire/bundle.ts';
import { entryToWire } from '../../../wire/entry.ts';

type SyncOut = MessageInitShape<typeof SyncAuthorizedEntriesResponseSchema>;
const MAX_KNOWN = 100_000;

export function syncHandlers(
  svids: SvidService,
  index: EntryIndex,
  bundles: BundleCache,
  federated: FederatedBundleCache,
  nodes: Pick<NodeStore, 'get'>,
): Partial<ServiceImpl<typeof SyncApi>> {
  return {
    async getAuthorizedEntries(_req, ctx) {
      const agent = agentCaller(ctx);
      const entries = svids.authorizedEntries(agent.node);
      return {
        entries: entries.map(entryToWire),
        bundle: bundleToWire(bundles.bundle),
        federatedBundles: [...federatedBundlesFor(entries, federated).values()].map(bundleToWire),
      };
    },
    /**
     * Full set first (only what differs from `known`), then deltas whenever the index, the
     * bundle or a federated bundle changes: the agent never polls full lists. Federated bundles:
     * the complete set the agent's entries federate with on the first message, then upserts and
     * removals.
     */
    async *syncAuthorizedEntries(req, ctx) {
      const agent = agentCaller(ctx);
      const known = new Map<string, bigint>(Object.entries(req.known).slice(0, MAX_KNOWN));
      const sent = new FederatedBundlesSent();
      const wake = new AsyncQueue<'entries' | 'bundle' | 'federated' | 'node'>(10_000);
      const offIndex = index.onChange(() => wake.push('entries'));
      // A ban or eviction ends the open stream too, not only the agent's next call.
      const offNodes = index.onNodesChange((ids) => {
        if (ids.includes(agent.spiffeId)) wake.push('node');
      });
      const offBundle = bundles.onChange(() => wake.push('bundle'));
      const offFederated = federated.onChange(() => wake.push('federated'));
      ctx.signal.addEventListener('abort', () => wake.close());
      const next = (initial: boolean, withBundle: boolean): SyncOut => {
        const entries = svids.authorizedEntries(agent.node);
        const fed = sent.next(federatedBundlesFor(entries, federated));
        return diff(entries, known, initial, withBundle ? bundles : null, fed);
      };
      try {
        yield next(true, true);
        let pendingBundle = false;
        for await (const why of wake) {
          if (why === 'node') {
            const node = await nodes.get(agent.spiffeId);
            if (!node) {
              throw new AgentRefusedError('agent_evicted', `agent ${agent.spiffeId} was evicted`);
            }
            if (node.banned) {
              throw new AgentRefusedError('agent_banned', `agent ${agent.spiffeId} is banned`);
            }
            continue;
          }
          pendingBundle ||= why === 'bundle';
          const msg = next(false, pendingBundle);
          pendingBundle = false;
          if (
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
      }
    },
  };
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
