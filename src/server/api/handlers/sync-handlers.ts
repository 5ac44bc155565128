import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Entry } from '../../../core/entry.ts';
import type { SyncService as SyncApi } from '../../../../proto/gen/tessera/v1/sync_pb.js';
import { type SyncAuthorizedEntriesResponseSchema } from '../../../../proto/gen/tessera/v1/sync_pb.js';
import type { BundleCache } from '../../bundle-cache.ts';
import type { EntryIndex } from '../../index/entry-index.ts';
import type { SvidService } from '../../svid/svid-service.ts';
import { AsyncQueue } from '../../../core/async-queue.ts';
import { agentCaller } from '../context-keys.ts';
import { bundleToWire, entryToWire } from '../convert.ts';

type SyncOut = MessageInitShape<typeof SyncAuthorizedEntriesResponseSchema>;
const MAX_KNOWN = 100_000;

export function syncHandlers(
  svids: SvidService,
  index: EntryIndex,
  bundles: BundleCache,
): Partial<ServiceImpl<typeof SyncApi>> {
  return {
    async getAuthorizedEntries(_req, ctx) {
      const agent = agentCaller(ctx);
      return {
        entries: svids.authorizedEntries(agent.node).map(entryToWire),
        bundle: bundleToWire(bundles.bundle),
      };
    },
    /**
     * Full set first (only what differs from `known`), then deltas whenever the index or the
     * bundle changes: the agent never polls full lists.
     */
    async *syncAuthorizedEntries(req, ctx) {
      const agent = agentCaller(ctx);
      const known = new Map<string, bigint>(Object.entries(req.known).slice(0, MAX_KNOWN));
      const wake = new AsyncQueue<'entries' | 'bundle'>(10_000);
      const offIndex = index.onChange(() => wake.push('entries'));
      const offBundle = bundles.onChange(() => wake.push('bundle'));
      ctx.signal.addEventListener('abort', () => wake.close());
      try {
        yield diff(svids.authorizedEntries(agent.node), known, true, bundles);
        let pendingBundle = false;
        for await (const why of wake) {
          pendingBundle ||= why === 'bundle';
          const msg = diff(
            svids.authorizedEntries(agent.node),
            known,
            false,
            pendingBundle ? bundles : null,
          );
          pendingBundle = false;
          if (msg.upserted?.length || msg.removed?.length || msg.bundle) yield msg;
        }
      } finally {
        offIndex();
        offBundle();
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
  };
}
