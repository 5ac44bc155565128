// Bundle, authority, audit and status handlers: thin translations to the services.
import type { ServiceImpl } from '@connectrpc/connect';
import type { JsonObject } from '@bufbuild/protobuf';
import type { AuditRecord } from '../../../core/audit.ts';
import type { AuthorityKind } from '../../../core/authority.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { AuditService as AuditApi } from '../../../../proto/gen/tessera/v1/audit_pb.js';
import type { AuthorityService as AuthorityApi } from '../../../../proto/gen/tessera/v1/authority_pb.js';
import type { BundleService as BundleApi } from '../../../../proto/gen/tessera/v1/bundle_pb.js';
import type { ServerService as ServerApi } from '../../../../proto/gen/tessera/v1/server_pb.js';
import type { AuditStore, NodeStore } from '../../../store/types.ts';
import type { Auditor } from '../../audit/auditor.ts';
import { followAudit } from '../../audit/follow.ts';
import { verifyAuditLog } from '../../audit/verify.ts';
import type { AuthorityManager } from '../../authority/authority-manager.ts';
import type { BundleCache } from '../../authority/bundle-cache.ts';
import { requestOf } from '../context-keys.ts';
import { authorityToWire } from '../../../wire/authority.ts';
import { bundleToWire } from '../../../wire/bundle.ts';
import { secondsFromMs } from '../../../wire/time.ts';

export function bundleHandlers(bundles: BundleCache): Partial<ServiceImpl<typeof BundleApi>> {
  return {
    async getBundle() {
      return { bundle: bundleToWire(bundles.bundle) };
    },
  };
}

function kindOf(kind: string): AuthorityKind {
  if (kind === 'x509' || kind === 'jwt') return kind;
  throw new InvalidArgumentError(`kind: must be "x509" or "jwt", got "${kind.slice(0, 32)}"`);
}

export function authorityHandlers(
  authorities: AuthorityManager,
): Partial<ServiceImpl<typeof AuthorityApi>> {
  return {
    async getAuthorities(req) {
      const kind = req.kind === '' ? undefined : kindOf(req.kind);
      return { authorities: authorities.list(kind).map(authorityToWire) };
    },
    async prepareAuthority(req, ctx) {
      return {
        authority: authorityToWire(await authorities.prepare(kindOf(req.kind), requestOf(ctx))),
      };
    },
    async activateAuthority(req, ctx) {
      return {
        authority: authorityToWire(
          await authorities.activate(kindOf(req.kind), req.id, requestOf(ctx)),
        ),
      };
    },
    async taintAuthority(req, ctx) {
      return {
        authority: authorityToWire(
          await authorities.taint(kindOf(req.kind), req.id, requestOf(ctx)),
        ),
      };
    },
    async revokeAuthority(req, ctx) {
      return {
        authority: authorityToWire(
          await authorities.revoke(kindOf(req.kind), req.id, requestOf(ctx)),
        ),
      };
    },
  };
}

const MAX_AUDIT_PAGE = 1000;

function auditRecordToWire(r: AuditRecord) {
  return {
    seq: BigInt(r.seq),
    time: BigInt(r.time),
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    correlationId: r.correlationId,
    details: JSON.parse(JSON.stringify(r.details)) as JsonObject,
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

const MAX_CORRELATION_ID = 128;

function checkCorrelationId(id: string): string {
  if (Buffer.byteLength(id) > MAX_CORRELATION_ID)
    throw new InvalidArgumentError(`correlation_id: at most ${MAX_CORRELATION_ID} bytes`);
  return id;
}

export function auditHandlers(
  audit: AuditStore,
  auditor: Pick<Auditor, 'onAppend'>,
): Partial<ServiceImpl<typeof AuditApi>> {
  return {
    async listAuditRecords(req) {
      const limit = req.limit || 100;
      if (limit < 1 || limit > MAX_AUDIT_PAGE)
        throw new InvalidArgumentError(`limit: must be 1..${MAX_AUDIT_PAGE}`);
      const records = req.tail
        ? await audit.tail(limit)
        : await audit.list(
            {
              afterSeq: Number(req.afterSeq),
              ...(req.action ? { action: req.action } : {}),
              ...(req.actor ? { actor: req.actor } : {}),
              ...(req.correlationId
                ? { correlationId: checkCorrelationId(req.correlationId) }
                : {}),
            },
            limit,
          );
      return { records: records.map(auditRecordToWire) };
    },
    async *followAuditRecords(req, ctx) {
      if (req.afterSeq < 0n) throw new InvalidArgumentError('after_seq: must not be negative');
      const batches = followAudit({
        audit,
        onAppend: (l) => auditor.onAppend(l),
        filter: {
          afterSeq: Number(req.afterSeq),
          ...(req.action ? { action: req.action } : {}),
          ...(req.actor ? { actor: req.actor } : {}),
        },
        signal: ctx.signal,
      });
      for await (const records of batches) yield { records: records.map(auditRecordToWire) };
    },
    async verifyAuditLog(req) {
      const v = await verifyAuditLog(
        audit,
        req.checkpoints.map((c) => ({ seq: Number(c.seq), hash: c.hash })),
      );
      return {
        ok: v.ok,
        count: BigInt(v.count),
        badSeq: BigInt(v.badSeq),
        reason: v.reason,
        headSeq: BigInt(v.head.seq),
        headHash: v.head.hash,
        missingFrom: BigInt(v.missingFrom),
        missingTo: BigInt(v.missingTo),
        checkpointsVerified: BigInt(v.checkpointsVerified),
      };
    },
  };
}

export interface StatusSource {
  trustDomain: string;
  serverId: string;
  version: string;
  startedAt: number;
  datastore: string;
  ready(): boolean;
  entryCount(): number;
}

export function serverHandlers(
  nodes: Pick<NodeStore, 'count'>,
  s: StatusSource,
): Partial<ServiceImpl<typeof ServerApi>> {
  return {
    async getStatus() {
      return {
        trustDomain: s.trustDomain,
        serverId: s.serverId,
        version: s.version,
        ready: s.ready(),
        datastore: s.datastore,
        entries: BigInt(s.entryCount()),
        agents: BigInt(await nodes.count()),
        startedAt: secondsFromMs(s.startedAt),
      };
    },
  };
}
