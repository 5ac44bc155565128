import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import { InvalidArgumentError, PermissionDeniedError } from '../../../core/errors.ts';
import type { AgentService as AgentApi } from '../../../../proto/gen/tessera/v1/agent_pb.js';
import {
  type AttestAgentRequest,
  type AttestAgentResponseSchema,
} from '../../../../proto/gen/tessera/v1/agent_pb.js';
import type { AgentService } from '../../attestation/agent-service.ts';
import type { AttestationService } from '../../attestation/attestation-service.ts';
import type { BundleCache } from '../../authority/bundle-cache.ts';
import { AsyncQueue } from '../../../core/async-queue.ts';
import { withTimeout } from '../with-timeout.ts';
import { agentCaller, requestOf } from '../context-keys.ts';
import { bundleToWire } from '../../../wire/bundle.ts';
import { nodeToWire } from '../../../wire/node.ts';
import { secondsFromMs, ttlMsFromWire } from '../../../wire/time.ts';

const STEP_TIMEOUT_MS = 15_000;
const MAX_CHALLENGE_ROUNDS = 4;
const MAX_CHALLENGE_RESPONSE_BYTES = 16 * 1024;

type Out = MessageInitShape<typeof AttestAgentResponseSchema>;

export function agentHandlers(
  attestation: AttestationService,
  agents: AgentService,
  bundles: BundleCache,
): Partial<ServiceImpl<typeof AgentApi>> {
  return {
    async *attestAgent(requests, ctx) {
      const input = requests[Symbol.asyncIterator]();
      const next = () =>
        withTimeout(
          input.next(),
          STEP_TIMEOUT_MS,
          () => new InvalidArgumentError('attestation timed out waiting for the agent'),
        );
      const first = await next();
      if (first.done || first.value.step.case !== 'params') {
        throw new InvalidArgumentError('the first AttestAgent message must carry params');
      }
      const params = first.value.step.value;
      const outbox = new AsyncQueue<Out>(MAX_CHALLENGE_ROUNDS + 1);
      let rounds = 0;
      const challenge = async (c: Uint8Array): Promise<Uint8Array> => {
        if (++rounds > MAX_CHALLENGE_ROUNDS)
          throw new PermissionDeniedError('too many attestation challenge rounds');
        outbox.push({ step: { case: 'challenge', value: c } });
        return challengeResponse(await next());
      };
      attestation
        .attest(
          requestOf(ctx),
          { type: params.type, payload: params.payload, csr: params.csr },
          challenge,
        )
        .then(
          (svid) => {
            outbox.push({
              step: {
                case: 'result',
                value: {
                  spiffeId: svid.spiffeId,
                  svidChain: svid.chainDer,
                  expiresAt: secondsFromMs(svid.expiresAt),
                  bundle: bundleToWire(bundles.bundle),
                },
              },
            });
            outbox.close();
          },
          (e: unknown) => outbox.fail(e),
        );
      yield* outbox;
    },
    async renewAgent(req, ctx) {
      const caller = agentCaller(ctx);
      const svid = await agents.renew(requestOf(ctx), caller.node, req.csr);
      return { svidChain: svid.chainDer, expiresAt: secondsFromMs(svid.expiresAt) };
    },
    async listAgents(req) {
      const banned = req.byBanned === '' ? undefined : req.byBanned === 'true';
      if (req.byBanned !== '' && req.byBanned !== 'true' && req.byBanned !== 'false') {
        throw new InvalidArgumentError('by_banned: must be "", "true" or "false"');
      }
      const page = await agents.list(
        {
          ...(banned !== undefined ? { banned } : {}),
          ...(req.byAttestationType ? { attestationType: req.byAttestationType } : {}),
        },
        req.pageSize,
        req.pageToken,
      );
      return { agents: page.items.map(nodeToWire), nextPageToken: page.nextPageToken };
    },
    async getAgent(req) {
      return { agent: nodeToWire(await agents.get(req.spiffeId)) };
    },
    async banAgent(req, ctx) {
      await agents.ban(requestOf(ctx), req.spiffeId);
      return {};
    },
    async evictAgent(req, ctx) {
      await agents.evict(requestOf(ctx), req.spiffeId);
      return {};
    },
    async createJoinToken(req, ctx) {
      const t = await agents.createJoinToken(requestOf(ctx), req.spiffeId, ttlMsFromWire(req.ttl));
      return {
        token: t.token,
        expiresAt: secondsFromMs(t.expiresAt),
        agentSpiffeId: t.agentSpiffeId,
      };
    },
  };
}

function challengeResponse(r: IteratorResult<AttestAgentRequest>): Uint8Array {
  if (r.done || r.value.step.case !== 'challengeResponse') {
    throw new InvalidArgumentError('expected a challenge response from the agent');
  }
  if (r.value.step.value.length > MAX_CHALLENGE_RESPONSE_BYTES) {
    throw new InvalidArgumentError('challenge response too large');
  }
  return r.value.step.value;
}
