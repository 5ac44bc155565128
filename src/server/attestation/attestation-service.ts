// Node attestation: verify an agent's evidence with the matching attestor, record the node and
// its selectors, and issue its agent SVID. Every attempt is audited, successful or not.
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError, PermissionDeniedError, isTesseraError } from '../../core/errors.ts';
import { AgentRefusedError } from '../../core/refusal.ts';
import type { AttestedNode } from '../../core/node.ts';
import { SpiffeId, type TrustDomain, agentId } from '../../core/spiffe-id.ts';
import { parseCsr } from '../../crypto/x509/csr.ts';
import {
  type ChallengeFn,
  MAX_ATTESTATION_PAYLOAD_BYTES,
  type NodeAttestor,
} from '../../plugins/node-attestors/node-attestor.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { Minter, X509Svid } from '../svid/minter.ts';

export interface AttestationRequest {
  type: string;
  payload: Uint8Array;
  csr: Uint8Array;
}

export interface AttestationOptions {
  store: Pick<Store, 'transaction' | 'nodes'>;
  auditor: Auditor;
  clock: Clock;
  minter: Minter;
  trustDomain: TrustDomain;
  attestors: ReadonlyMap<string, NodeAttestor>;
  agentSvidTtlMs: number;
}

export class AttestationService {
  readonly #o: AttestationOptions;
  constructor(o: AttestationOptions) {
    this.#o = o;
  }

  async attest(
    ctx: RequestContext,
    req: AttestationRequest,
    challenge: ChallengeFn,
  ): Promise<X509Svid> {
    let target = req.type;
    try {
      const attestor = this.#o.attestors.get(req.type);
      if (!attestor)
        throw new InvalidArgumentError(
          `node attestor "${req.type.slice(0, 64)}" is not enabled on this server`,
        );
      if (req.payload.length === 0 || req.payload.length > MAX_ATTESTATION_PAYLOAD_BYTES) {
        throw new InvalidArgumentError(
          `attestation payload must be 1..${MAX_ATTESTATION_PAYLOAD_BYTES} bytes`,
        );
      }
      // Parse the CSR before the attestor runs: a bad CSR must not burn a single-use join token.
      const csr = parseCsr(req.csr);
      const result = await attestor.attest(req.payload, challenge);
      const id = result.spiffeId
        ? SpiffeId.parse(result.spiffeId)
        : agentId(this.#o.trustDomain, attestor.type, ...result.idSegments);
      target = id.toString();
      const existing = await this.#o.store.nodes.get(target);
      if (existing?.banned)
        throw new AgentRefusedError('agent_banned', `agent ${target} is banned`);
      if (existing && result.trustOnFirstUse)
        throw new PermissionDeniedError(
          `${attestor.type}: agent ${target} is already attested (trust on first use): evict it to attest again, or allow re-attestation`,
        );
      const svid = await this.#o.minter.x509(target, csr.publicKey, this.#o.agentSvidTtlMs, []);
      const now = this.#o.clock.now();
      const node: AttestedNode = {
        spiffeId: target,
        attestationType: attestor.type,
        serialNumber: svid.serialHex,
        newSerialNumber: '',
        expiresAt: svid.expiresAt,
        selectors: result.selectors,
        banned: false,
        canReattest: result.canReattest,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      await this.#o.store.transaction(async (tx) => {
        await tx.nodes.upsert(node);
        await this.#o.auditor.record(tx, ctx, {
          action: 'agent.attest',
          target,
          outcome: 'success',
          details: {
            attestor: attestor.type,
            reattested: existing !== null,
            serial: svid.serialHex,
          },
        });
      });
      return svid;
    } catch (e) {
      if (isTesseraError(e) && e.code !== 'unavailable' && e.code !== 'internal') {
        await this.#o.auditor.log(ctx, {
          action: 'agent.attest',
          target,
          outcome: 'denied',
          details: { code: e.code, reason: e.message },
        });
      }
      throw e;
    }
  }
}
