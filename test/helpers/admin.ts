// Typed admin clients over a server's local admin socket.
import { createClient } from '@connectrpc/connect';
import { adminSocketTransport } from '../../src/client/server-transport.ts';
import { AgentService } from '../../proto/gen/tessera/v1/agent_pb.js';
import { AuditService } from '../../proto/gen/tessera/v1/audit_pb.js';
import { AuthorityService } from '../../proto/gen/tessera/v1/authority_pb.js';
import { BundleService } from '../../proto/gen/tessera/v1/bundle_pb.js';
import { EntryService } from '../../proto/gen/tessera/v1/entry_pb.js';
import { ServerService } from '../../proto/gen/tessera/v1/server_pb.js';
import { SvidService } from '../../proto/gen/tessera/v1/svid_pb.js';

export function adminClients(socket: string) {
  const t = adminSocketTransport(socket);
  return {
    entries: createClient(EntryService, t),
    agents: createClient(AgentService, t),
    svids: createClient(SvidService, t),
    bundles: createClient(BundleService, t),
    authorities: createClient(AuthorityService, t),
    audit: createClient(AuditService, t),
    server: createClient(ServerService, t),
  };
}

export type AdminClients = ReturnType<typeof adminClients>;

export function entry(
  spiffeId: string,
  parentId: string,
  selectors: string[],
  extra: Record<string, unknown> = {},
) {
  return {
    spiffeId,
    parentId,
    selectors: selectors.map((s) => {
      const i = s.indexOf(':');
      return i < 0 ? { type: s, value: '' } : { type: s.slice(0, i), value: s.slice(i + 1) };
    }),
    ...extra,
  };
}
