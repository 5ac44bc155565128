// SyncService: the agent authenticated at the edge, handed to the sync room (sync/agent-sync.ts).
import type { ServiceImpl } from '@connectrpc/connect';
import type { SyncService as SyncApi } from '../../../../proto/gen/tessera/v1/sync_pb.js';
import type { NodeStore } from '../../../store/types.ts';
import type { BundleCache } from '../../authority/bundle-cache.ts';
import type { FederatedBundleCache } from '../../authority/federated-bundle-cache.ts';
import type { EntryIndex } from '../../registration/entry-index.ts';
import type { SvidService } from '../../svid/svid-service.ts';
import { type AccessRevisionSource, AgentSync } from '../../sync/agent-sync.ts';
import { agentCaller } from '../context-keys.ts';

export function syncHandlers(
  svids: SvidService,
  index: EntryIndex,
  bundles: BundleCache,
  federated: FederatedBundleCache,
  nodes: Pick<NodeStore, 'get'>,
  access?: AccessRevisionSource,
  posture?: AccessRevisionSource,
): Partial<ServiceImpl<typeof SyncApi>> {
  const sync = new AgentSync({
    svids,
    index,
    bundles,
    federated,
    nodes,
    ...(access ? { access } : {}),
    ...(posture ? { posture } : {}),
  });
  return {
    getAuthorizedEntries: async (_req, ctx) => sync.authorized(agentCaller(ctx)),
    syncAuthorizedEntries: (req, ctx) => sync.stream(agentCaller(ctx), req.known, ctx.signal),
  };
}
