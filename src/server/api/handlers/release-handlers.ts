// CredentialReleaseService (tessera/v1/release.proto), agent mTLS only: a thin translation to
// the credential broker. A denial is an answer; refusals and provider failures are errors.
import type { ServiceImpl } from '@connectrpc/connect';
import type { CredentialReleaseService as ReleaseApi } from '../../../../proto/gen/tessera/v1/release_pb.js';
import type { CredentialBroker } from '../../broker/broker.ts';
import type { CachedUseAudit } from '../../broker/cached-uses.ts';
import type { AgentServerWorkloadList } from '../../access/agent-server-workloads.ts';
import { agentCaller, requestOf } from '../context-keys.ts';
import { serverWorkloadToWire } from '../../../wire/access.ts';
import { cachedUseFromWire } from '../../../wire/cached-use.ts';
import { deniedToWire, releasedToWire } from '../../../wire/release.ts';

export interface ReleaseServices {
  readonly broker: Pick<CredentialBroker, 'release' | 'granted'>;
  /** The server workloads the agent's proxy may reach (agent-server-workloads.ts). */
  readonly serverWorkloads: () => Promise<AgentServerWorkloadList>;
  readonly cachedUses: Pick<CachedUseAudit, 'report'>;
}

export function releaseHandlers({
  broker,
  serverWorkloads,
  cachedUses,
}: ReleaseServices): Partial<ServiceImpl<typeof ReleaseApi>> {
  return {
    async listAgentServerWorkloads() {
      const list = await serverWorkloads();
      return {
        serverWorkloads: list.serverWorkloads.map(serverWorkloadToWire),
        accessRevision: BigInt(list.revision),
      };
    },
    async reportCachedUses(req, ctx) {
      const agent = agentCaller(ctx);
      const dropped =
        req.dropped > BigInt(Number.MAX_SAFE_INTEGER)
          ? Number.MAX_SAFE_INTEGER
          : Number(req.dropped);
      await cachedUses.report(requestOf(ctx), agent.node, req.uses.map(cachedUseFromWire), dropped);
      return {};
    },
    async releaseCredential(req, ctx) {
      const agent = agentCaller(ctx);
      const out = await broker.release(agent.node, {
        entryId: req.entryId,
        selectors: req.selectors,
        attributes: req.attributes,
        server: req.server,
        httpMethod: req.httpMethod,
        httpPath: req.httpPath,
        httpHost: req.httpHost,
        correlationId: req.correlationId,
      });
      if (out.kind === 'denial') return deniedToWire(out);
      return releasedToWire({ ...out, credentialProvider: out.provider });
    },
    async listGrantedServerWorkloads(req, ctx) {
      const agent = agentCaller(ctx);
      const names = await broker.granted(
        agent.node,
        {
          entryId: req.entryId,
          selectors: req.selectors,
          attributes: req.attributes,
          correlationId: '',
        },
        req.protocol,
      );
      return { names };
    },
  };
}
