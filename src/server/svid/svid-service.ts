// SVID issuance through the API: admins mint for any ID in the trust domain; agents mint only for
// entries the index says they are authorized for (anything else: PermissionDenied + audit).
import type { Clock } from '../../core/clock.ts';
import type { Entry } from '../../core/entry.ts';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
  isTesseraError,
} from '../../core/errors.ts';
import type { AttestedNode } from '../../core/node.ts';
import { type TrustDomain, parseLeafId } from '../../core/spiffe-id.ts';
import { checkDnsName } from '../../core/entry.ts';
import { formatSelector } from '../../core/selector.ts';
import { type ParsedCsr, parseCsr, parseCsrAsync } from '../../crypto/x509/csr.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import type { BatchResult } from '../registration/entry-service.ts';
import type { JwtSvid, Minter, X509Svid } from './minter.ts';
import { checkAttributes } from '../broker/release-input.ts';
import { evaluateEntryCondition, type EntryVerdict } from '../posture/entry-condition.ts';
import { workloadFacts, type PostureLookup } from '../posture/workload-facts.ts';

/** Flat workload attributes from the agent (svid.proto `attributes`); untrusted. */
export type FlatAttributes = Readonly<Record<string, string>>;

const NO_POSTURE: PostureLookup = { report: () => undefined };

export const MAX_MINT_BATCH = 500;

export interface SvidServiceOptions {
  auditor: Auditor;
  clock: Clock;
  minter: Minter;
  index: EntryIndex;
  trustDomain: TrustDomain;
  defaultX509TtlMs: number;
  defaultJwtTtlMs: number;
  onIssued?: (kind: 'x509' | 'jwt', count: number) => void;
  /** Stored posture reports, for entry conditions (server/posture/posture-index.ts). */
  posture?: PostureLookup;
}

export class SvidService {
  readonly #o: SvidServiceOptions;
  constructor(o: SvidServiceOptions) {
    this.#o = o;
  }

  async mintX509(
    ctx: RequestContext,
    req: { spiffeId: string; csr: Uint8Array; ttlMs: number; dnsNames: readonly string[] },
  ): Promise<X509Svid> {
    const id = this.#memberLeaf(req.spiffeId);
    for (const d of req.dnsNames) checkDnsName(d);
    const csr = parseCsr(req.csr);
    const svid = await this.#o.minter.x509(
      id,
      csr.publicKey,
      req.ttlMs || this.#o.defaultX509TtlMs,
      req.dnsNames,
    );
    await this.#o.auditor.log(ctx, {
      action: 'svid.x509.mint',
      target: id,
      outcome: 'success',
      details: { serial: svid.serialHex, expiresAt: svid.expiresAt },
    });
    this.#o.onIssued?.('x509', 1);
    return svid;
  }

  async mintJwt(
    ctx: RequestContext,
    req: { spiffeId: string; audience: readonly string[]; ttlMs: number },
  ): Promise<JwtSvid> {
    const id = this.#memberLeaf(req.spiffeId);
    const svid = await this.#o.minter.jwt(id, req.audience, req.ttlMs || this.#o.defaultJwtTtlMs);
    await this.#o.auditor.log(ctx, {
      action: 'svid.jwt.mint',
      target: id,
      outcome: 'success',
      details: { audience: [...req.audience], expiresAt: svid.expiresAt },
    });
    this.#o.onIssued?.('jwt', 1);
    return svid;
  }

  /** The entries this agent may mint for, from the in-memory index. */
  authorizedEntries(node: AttestedNode): Entry[] {
    const selectors = new Set(node.selectors.map(formatSelector));
    return this.#o.index.authorizedFor(node.spiffeId, selectors, this.#o.clock.now());
  }

  #authorizedEntry(node: AttestedNode, entryId: string): Entry | undefined {
    const selectors = new Set(node.selectors.map(formatSelector));
    return this.#o.index.authorizedEntry(node.spiffeId, selectors, entryId, this.#o.clock.now());
  }

  async batchNewX509(
    ctx: RequestContext,
    node: AttestedNode,
    params: readonly { entryId: string; csr: Uint8Array; attributes?: FlatAttributes }[],
  ): Promise<BatchResult<X509Svid & { entryId: string }>[]> {
    if (params.length === 0 || params.length > MAX_MINT_BATCH) {
      throw new InvalidArgumentError(`params: 1..${MAX_MINT_BATCH} items per batch`);
    }
    const authorized = new Map<string, Entry>();
    for (const p of params) {
      const e = this.#authorizedEntry(node, p.entryId);
      if (e) authorized.set(p.entryId, e);
    }
    // CSR signature checks run on the thread pool, all at once; signing then runs here.
    const csrs = await Promise.allSettled(
      params.map((p) => (authorized.has(p.entryId) ? parseCsrAsync(p.csr) : Promise.reject(null))),
    );
    const results: BatchResult<X509Svid & { entryId: string }>[] = [];
    const issued: Record<string, string> = {};
    for (const [i, p] of params.entries()) {
      try {
        const entry = authorized.get(p.entryId);
        if (!entry) throw await this.#deny(ctx, node, p.entryId, 'svid.x509.new');
        const csr = csrs[i] as PromiseSettledResult<ParsedCsr>;
        if (csr.status === 'rejected') throw csr.reason;
        await this.#requireCondition(ctx, node, entry, p.attributes, 'svid.x509.new');
        const ttl = entry.x509SvidTtl > 0 ? entry.x509SvidTtl * 1000 : this.#o.defaultX509TtlMs;
        const svid = await this.#o.minter.x509(
          entry.spiffeId,
          csr.value.publicKeyDer,
          ttl,
          entry.dnsNames,
        );
        issued[entry.id] = svid.serialHex;
        results.push({ ok: true, value: { ...svid, entryId: entry.id } });
      } catch (e) {
        if (!isTesseraError(e) || e.code === 'internal' || e.code === 'unavailable') throw e;
        results.push({ ok: false, code: e.code, message: e.message });
      }
    }
    if (Object.keys(issued).length > 0) {
      // One record per batch keeps the audit log proportional to calls, listing every serial.
      await this.#o.auditor.log(ctx, {
        action: 'svid.x509.new',
        target: node.spiffeId,
        outcome: 'success',
        details: { serials: issued },
      });
      this.#o.onIssued?.('x509', Object.keys(issued).length);
    }
    return results;
  }

  async newJwt(
    ctx: RequestContext,
    node: AttestedNode,
    entryId: string,
    audience: readonly string[],
    attributes?: FlatAttributes,
  ): Promise<JwtSvid> {
    const entry = this.#authorizedEntry(node, entryId);
    if (!entry) throw await this.#deny(ctx, node, entryId, 'svid.jwt.new');
    await this.#requireCondition(ctx, node, entry, attributes, 'svid.jwt.new');
    const ttl = entry.jwtSvidTtl > 0 ? entry.jwtSvidTtl * 1000 : this.#o.defaultJwtTtlMs;
    const svid = await this.#o.minter.jwt(entry.spiffeId, audience, ttl);
    await this.#o.auditor.log(ctx, {
      action: 'svid.jwt.new',
      target: entry.spiffeId,
      outcome: 'success',
      details: { entryId, audience: [...audience], expiresAt: svid.expiresAt },
    });
    this.#o.onIssued?.('jwt', 1);
    return svid;
  }

  /**
   * Several JWT-SVIDs for one agent in one call: each item is authorized against the index and
   * audited exactly as newJwt does it (one record per issued token, committed together by the
   * auditor's group commit), so batching changes the cost, never the rules. Per-item failures
   * (not authorized, bad audience) are results; internal/unavailable failures fail the call.
   */
  async batchNewJwt(
    ctx: RequestContext,
    node: AttestedNode,
    params: readonly {
      entryId: string;
      audience: readonly string[];
      attributes?: FlatAttributes;
    }[],
  ): Promise<BatchResult<JwtSvid & { entryId: string }>[]> {
    if (params.length === 0 || params.length > MAX_MINT_BATCH) {
      throw new InvalidArgumentError(`params: 1..${MAX_MINT_BATCH} items per batch`);
    }
    const selectors = new Set(node.selectors.map(formatSelector));
    const now = this.#o.clock.now();
    const results: BatchResult<JwtSvid & { entryId: string }>[] = [];
    const audits: Promise<void>[] = [];
    let issued = 0;
    for (const p of params) {
      try {
        const entry = this.#o.index.authorizedEntry(node.spiffeId, selectors, p.entryId, now);
        if (!entry) throw await this.#deny(ctx, node, p.entryId, 'svid.jwt.new');
        await this.#requireCondition(ctx, node, entry, p.attributes, 'svid.jwt.new');
        const ttl = entry.jwtSvidTtl > 0 ? entry.jwtSvidTtl * 1000 : this.#o.defaultJwtTtlMs;
        const svid = await this.#o.minter.jwt(entry.spiffeId, p.audience, ttl);
        audits.push(
          this.#o.auditor.log(ctx, {
            action: 'svid.jwt.new',
            target: entry.spiffeId,
            outcome: 'success',
            details: { entryId: entry.id, audience: [...p.audience], expiresAt: svid.expiresAt },
          }),
        );
        issued++;
        results.push({ ok: true, value: { ...svid, entryId: entry.id } });
      } catch (e) {
        if (!isTesseraError(e) || e.code === 'internal' || e.code === 'unavailable') {
          await Promise.allSettled(audits);
          throw e;
        }
        results.push({ ok: false, code: e.code, message: e.message });
      }
    }
    // Fail closed: no token leaves unless every record of this batch is committed.
    await Promise.all(audits);
    if (issued > 0) this.#o.onIssued?.('jwt', issued);
    return results;
  }

  /**
   * Whether a workload with `attributes` meets the conditions of these entries (the agent asks
   * before it serves a conditional entry, and again when posture changes). Entries the agent is
   * not authorized for are refused. Never audited per call: issuance is, at signing.
   */
  checkConditions(
    node: AttestedNode,
    entryIds: readonly string[],
    attributes: FlatAttributes,
  ): { entryId: string; verdict: EntryVerdict }[] {
    if (entryIds.length === 0 || entryIds.length > MAX_MINT_BATCH) {
      throw new InvalidArgumentError(`entry_ids: 1..${MAX_MINT_BATCH} items per call`);
    }
    const facts = workloadFacts(checkAttributes(attributes), node, this.#o.posture ?? NO_POSTURE);
    return entryIds.map((id) => {
      const entry = this.#authorizedEntry(node, id);
      const verdict: EntryVerdict = entry
        ? evaluateEntryCondition(entry, facts)
        : { allowed: false, reason: `agent is not authorized for entry "${id.slice(0, 64)}"` };
      return { entryId: id.slice(0, 64), verdict };
    });
  }

  /**
   * The entry's condition over the workload's facts, at signing: the server is the authority.
   * An entry without one passes; a refusal is audited and fails the item (FailedPrecondition).
   */
  async #requireCondition(
    ctx: RequestContext,
    node: AttestedNode,
    entry: Entry,
    attributes: FlatAttributes | undefined,
    action: string,
  ): Promise<void> {
    if ((entry.condition ?? '') === '') return;
    const facts = workloadFacts(
      checkAttributes(attributes ?? {}),
      node,
      this.#o.posture ?? NO_POSTURE,
    );
    const v = evaluateEntryCondition(entry, facts);
    if (v.allowed) return;
    await this.#o.auditor.log(ctx, {
      action,
      target: node.spiffeId,
      outcome: 'denied',
      details: { entryId: entry.id, reason: v.reason },
    });
    throw new FailedPreconditionError(`entry ${entry.id}: ${v.reason}`);
  }

  async #deny(
    ctx: RequestContext,
    node: AttestedNode,
    entryId: string,
    action: string,
  ): Promise<PermissionDeniedError> {
    const err = new PermissionDeniedError(
      `agent is not authorized to mint for entry "${entryId.slice(0, 64)}"`,
    );
    await this.#o.auditor.log(ctx, {
      action,
      target: node.spiffeId,
      outcome: 'denied',
      details: { entryId: entryId.slice(0, 64), reason: err.message },
    });
    return err;
  }

  #memberLeaf(text: string): string {
    const id = parseLeafId(text, 'spiffe_id');
    if (!id.memberOf(this.#o.trustDomain)) {
      throw new InvalidArgumentError(
        `spiffe_id: "${text}" is not in trust domain ${this.#o.trustDomain}`,
      );
    }
    return id.toString();
  }
}
