// CredentialReleaseService (tessera/v1/release.proto), agent mTLS only: a thin translation to
// the credential broker. A denial is an answer; refusals and provider failures are errors.
import type { ServiceImpl } from '@connectrpc/connect';
import type { CredentialReleaseService as ReleaseApi } from '../../../../proto/gen/tessera/v1/release_pb.js';
import type { CredentialBroker } from '../../broker/broker.ts';
import { agentCaller } from '../context-keys.ts';
import { deniedToWire, releasedToWire } from '../../../wire/release.ts';

export function releaseHandlers(
  broker: Pick<CredentialBroker, 'release' | 'granted'>,
): Partial<ServiceImpl<typeof ReleaseApi>> {
  return {
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
