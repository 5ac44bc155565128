// Attested agents: renewal of agent SVIDs, and the admin operations list, show, ban, evict and
// join-token generation. A banned or evicted agent is refused at its next call, because every
// agent call re-reads its node record (see api/authenticate.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { type Entry, validateEntryInput } from '../../core/entry.ts';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import type { AttestedNode } from '../../core/node.ts';
import { SpiffeId, type TrustDomain, agentId, isAgentId } from '../../core/spiffe-id.ts';
import { parseCsr } from '../../crypto/x509/csr.ts';
import {
  JOIN_TOKEN_TYPE,
  hashJoinToken,
  joinTokenAgentSegment,
} from '../../plugins/node-attestors/join-token/server.ts';
import type { NodeFilter, Page, Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AccessRevocation } from '../../core/access.ts';
import type { Minter, X509Svid } from '../svid/minter.ts';

export const MAX_JOIN_TOKEN_TTL_MS = 30 * 86_400_000;

export interface AgentServiceOptions {
  store: Pick<Store, 'transaction' | 'nodes'>;
  auditor: Auditor;
  clock: Clock;
  minter: Minter;
  trustDomain: TrustDomain;
  agentSvidTtlMs: number;
  joinTokenTtlMs: number;
  /** Ends the agent's credential leases and purges agent caches after a ban or eviction. */
  revocation?: AccessRevocation;
}

export class AgentService {
  readonly #o: AgentServiceOptions;
  constructor(o: AgentServiceOptions) {
    this.#o = o;
  }

  /** The calling agent renews its SVID. The old one stays valid until the new one is first used. */
  async renew(ctx: RequestContext, node: AttestedNode, csrDer: Uint8Array): Promise<X509Svid> {
    const csr = parseCsr(csrDer);
    const svid = await this.#o.minter.x509(
      node.spiffeId,
      csr.publicKey,
      this.#o.agentSvidTtlMs,
      [],
    );
    await this.#o.store.transaction(async (tx) => {
      await tx.nodes.update(node.spiffeId, {
        newSerialNumber: svid.serialHex,
        expiresAt: svid.expiresAt,
        updatedAt: this.#o.clock.now(),
      });
      await this.#o.auditor.record(tx, ctx, {
        action: 'agent.renew',
        target: node.spiffeId,
        outcome: 'success',
        details: { serial: svid.serialHex },
      });
    });
    return svid;
  }

  /** First call with a renewed SVID: it becomes the current one and the old one stops working. */
  async promoteSerial(node: AttestedNode, serial: string): Promise<AttestedNode> {
    return this.#o.store.nodes.update(node.spiffeId, {
      serialNumber: serial,
      newSerialNumber: '',
      updatedAt: this.#o.clock.now(),
    });
  }

  async list(filter: NodeFilter, pageSize: number, pageToken: string): Promise<Page<AttestedNode>> {
    const size = pageSize || 100;
    if (!Number.isInteger(size) || size < 1 || size > 1000) {
      throw new InvalidArgumentError('page_size: must be between 1 and 1000');
    }
    return this.#o.store.nodes.list(filter, size, pageToken);
  }

  async get(spiffeId: string): Promise<AttestedNode> {
    const id = this.#agentId(spiffeId);
    const node = await this.#o.store.nodes.get(id);
    if (!node) throw new NotFoundError(`agent ${id} not found`);
    return node;
  }

  async ban(ctx: RequestContext, spiffeId: string): Promise<void> {
    const id = this.#agentId(spiffeId);
    await this.#o.store.transaction(async (tx) => {
      const node = await tx.nodes.get(id);
      if (!node) throw new NotFoundError(`agent ${id} not found`);
      await tx.nodes.update(id, { banned: true, updatedAt: this.#o.clock.now() });
      await this.#o.auditor.record(tx, ctx, {
        action: 'agent.ban',
        target: id,
        outcome: 'success',
      });
    });
    await this.#revoke(id, 'agent banned');
  }

  async evict(ctx: RequestContext, spiffeId: string): Promise<void> {
    const id = this.#agentId(spiffeId);
    await this.#o.store.transaction(async (tx) => {
      await tx.nodes.delete(id);
      await this.#o.auditor.record(tx, ctx, {
        action: 'agent.evict',
        target: id,
        outcome: 'success',
      });
    });
    await this.#revoke(id, 'agent evicted');
  }

  /**
   * After the commit: the ban stands whatever happens here. A failure is reported to the admin
   * (who may retry the ban); the credentials released through the agent end at their expiry.
   */
  async #revoke(agent: string, reason: string): Promise<void> {
    if (!this.#o.revocation) return;
    try {
      await this.#o.revocation.revoke({ agent }, reason);
    } catch (e) {
      throw new UnavailableError(
        `${reason}, but ending the credentials released through it failed: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
  }

  async createJoinToken(
    ctx: RequestContext,
    spiffeId: string,
    ttlMs: number,
  ): Promise<{ token: string; expiresAt: number; agentSpiffeId: string; alias: Entry | null }> {
    const ttl = ttlMs || this.#o.joinTokenTtlMs;
    if (ttl <= 0 || ttl > MAX_JOIN_TOKEN_TTL_MS)
      throw new InvalidArgumentError('ttl: must be between 1s and 30d');
    if (spiffeId) {
      const id = SpiffeId.parse(spiffeId);
      if (!id.memberOf(this.#o.trustDomain) || id.isTrustDomainId) {
        throw new InvalidArgumentError(
          `spiffe_id: "${spiffeId}" must be a non-root ID in trust domain ${this.#o.trustDomain}`,
        );
      }
    }
    const token = randomBytes(24).toString('base64url');
    const now = this.#o.clock.now();
    const expiresAt = now + ttl;
    // The agent always gets its join_token ID, so the server knows it for an agent by its path.
    const agentSpiffeId = agentId(
      this.#o.trustDomain,
      JOIN_TOKEN_TYPE,
      joinTokenAgentSegment(token),
    ).toString();
    const alias = spiffeId ? this.#nodeAlias(spiffeId, agentSpiffeId, now) : null;
    await this.#o.store.transaction(async (tx) => {
      await tx.joinTokens.create({
        tokenHash: hashJoinToken(token),
        spiffeId: '',
        expiresAt,
        createdAt: now,
      });
      if (alias) {
        await tx.entries.create(alias);
        await this.#o.auditor.record(tx, ctx, {
          action: 'entry.create',
          target: alias.id,
          outcome: 'success',
          details: { spiffeId: alias.spiffeId, parentId: alias.parentId, nodeAlias: true },
        });
      }
      await this.#o.auditor.record(tx, ctx, {
        action: 'join_token.create',
        target: agentSpiffeId,
        outcome: 'success',
        details: alias ? { expiresAt, alias: alias.spiffeId } : { expiresAt },
      });
    });
    return { token, expiresAt, agentSpiffeId, alias };
  }

  /**
   * SPIRE's meaning of `token generate -spiffeID`: an entry naming the token's agent (parent =
   * its join_token ID, selector spiffe_id:<that ID>), so that entries whose parent is the given
   * ID reach that agent's workloads (the entry index walks such chains). No workload attestor
   * produces `spiffe_id` selectors, so no workload ever gets the alias itself.
   */
  #nodeAlias(spiffeId: string, agentSpiffeId: string, now: number): Entry {
    const fields = validateEntryInput(
      { spiffeId, parentId: agentSpiffeId, selectors: [`spiffe_id:${agentSpiffeId}`] },
      this.#o.trustDomain,
    );
    return { ...fields, id: randomUUID(), revision: 1, createdAt: now };
  }

  #agentId(text: string): string {
    const id = SpiffeId.parse(text);
    if (!id.memberOf(this.#o.trustDomain)) {
      throw new InvalidArgumentError(
        `spiffe_id: "${text}" is not in trust domain ${this.#o.trustDomain}`,
      );
    }
    if (!isAgentId(id) && id.isTrustDomainId)
      throw new InvalidArgumentError(`spiffe_id: "${text}" is not an agent ID`);
    return id.toString();
  }
}
