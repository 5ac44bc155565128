import type { ServiceImpl } from '@connectrpc/connect';
import type { SvidService as SvidApi } from '../../../../proto/gen/tessera/v1/svid_pb.js';
import type { SvidService } from '../../svid/svid-service.ts';
import type { IdentityDocumentService } from '../../svid/identity-document.ts';
import { agentCaller, requestOf } from '../context-keys.ts';
import { statusToWire } from '../../../wire/status.ts';
import { secondsFromMs, ttlMsFromWire } from '../../../wire/time.ts';

export function svidHandlers(
  svids: SvidService,
  documents: IdentityDocumentService,
): Partial<ServiceImpl<typeof SvidApi>> {
  return {
    async newIdentityDocument(req, ctx) {
      const agent = agentCaller(ctx);
      const doc = await documents.issue(requestOf(ctx), agent.node, {
        entryId: req.entryId,
        audience: req.audience,
        selectors: req.selectors,
        attributes: req.attributes,
      });
      return {
        spiffeId: doc.spiffeId,
        token: doc.token,
        expiresAt: secondsFromMs(doc.expiresAt),
      };
    },
    async mintX509SVID(req, ctx) {
      const svid = await svids.mintX509(requestOf(ctx), {
        spiffeId: req.spiffeId,
        csr: req.csr,
        ttlMs: ttlMsFromWire(req.ttl),
        dnsNames: req.dnsNames,
      });
      return { svidChain: svid.chainDer, expiresAt: secondsFromMs(svid.expiresAt) };
    },
    async mintJWTSVID(req, ctx) {
      const svid = await svids.mintJwt(requestOf(ctx), {
        spiffeId: req.spiffeId,
        audience: req.audience,
        ttlMs: ttlMsFromWire(req.ttl),
      });
      return { token: svid.token, expiresAt: secondsFromMs(svid.expiresAt) };
    },
    async batchNewX509SVID(req, ctx) {
      const agent = agentCaller(ctx);
      const results = await svids.batchNewX509(
        requestOf(ctx),
        agent.node,
        req.params.map((p) => ({ entryId: p.entryId, csr: p.csr, attributes: p.attributes })),
      );
      return batchResults(req.params, results, (v) => ({
        spiffeId: v.spiffeId,
        svidChain: v.chainDer,
        expiresAt: secondsFromMs(v.expiresAt),
      }));
    },
    async newJWTSVID(req, ctx) {
      const agent = agentCaller(ctx);
      const svid = await svids.newJwt(
        requestOf(ctx),
        agent.node,
        req.entryId,
        req.audience,
        req.attributes,
      );
      return {
        spiffeId: svid.spiffeId,
        token: svid.token,
        expiresAt: secondsFromMs(svid.expiresAt),
      };
    },
    checkEntryConditions(req, ctx) {
      const agent = agentCaller(ctx);
      const results = svids.checkConditions(agent.node, req.entryIds, req.attributes);
      return {
        results: results.map((r) => ({
          entryId: r.entryId,
          allowed: r.verdict.allowed,
          reason: r.verdict.allowed ? '' : r.verdict.reason,
        })),
      };
    },
    async batchNewJWTSVID(req, ctx) {
      const agent = agentCaller(ctx);
      const results = await svids.batchNewJwt(
        requestOf(ctx),
        agent.node,
        req.params.map((p) => ({
          entryId: p.entryId,
          audience: p.audience,
          attributes: p.attributes,
        })),
      );
      return batchResults(req.params, results, (v) => ({
        spiffeId: v.spiffeId,
        token: v.token,
        expiresAt: secondsFromMs(v.expiresAt),
      }));
    },
  };
}

type BatchResult<V> = { ok: true; value: V } | { ok: false; code: string; message: string };

/** One result per request item, in order: its status, its entry id and, on success, `fields`. */
function batchResults<V, F extends object>(
  params: readonly { entryId: string }[],
  results: readonly BatchResult<V>[],
  fields: (v: V) => F,
) {
  return {
    results: results.map((r, i) => ({
      status: statusToWire(r),
      entryId: params[i]?.entryId ?? '',
      ...(r.ok ? fields(r.value) : {}),
    })),
  };
}
