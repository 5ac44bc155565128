// The one interceptor every RPC passes: per-address rate limits (attestation, signing), then
// authenticate the peer, authorize by the table (default deny, denials audited), then run the
// handler with errors mapped to the wire in one place.
import { randomUUID } from 'node:crypto';
import type { Interceptor, StreamResponse } from '@connectrpc/connect';
import { PermissionDeniedError, isTesseraError } from '../../core/errors.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { Authenticator } from './authenticate.ts';
import type { ApiRateLimits } from './rate-limits.ts';
import { isAllowed } from './authz-table.ts';
import { peerKey, requestKey } from './context-keys.ts';
import { toConnectError } from './error-map.ts';

export interface InterceptorDeps {
  authenticator: Authenticator;
  auditor: Auditor;
  log: (msg: string, fields: Record<string, unknown>) => void;
  observe: (method: string, code: string, seconds: number) => void;
  /** Per-address limits on attestation and signing, checked before authentication. */
  rateLimits?: ApiRateLimits | undefined;
}

export function apiInterceptor(d: InterceptorDeps): Interceptor {
  return (next) => async (req) => {
    const method = `/${req.service.typeName}/${req.method.name}`;
    const correlationId = randomUUID();
    const started = performance.now();
    const fail = (e: unknown) => {
      const ce = toConnectError(e, correlationId, (err) =>
        d.log('request failed', {
          method,
          correlationId,
          err: isTesseraError(err) ? err.message : err,
        }),
      );
      d.observe(method, codeName(ce.code), (performance.now() - started) / 1000);
      return ce;
    };
    try {
      const peer = req.contextValues.get(peerKey);
      if (!peer) throw new Error('no transport peer on the request');
      d.rateLimits?.check(method, peer, req.stream ? undefined : req.message);
      let ctx: RequestContext = { caller: { kind: 'anonymous' }, correlationId };
      try {
        ctx = { caller: await d.authenticator.resolve(peer), correlationId };
      } catch (e) {
        if (isTesseraError(e) && (e.code === 'unauthenticated' || e.code === 'permission_denied')) {
          await d.auditor.log(ctx, {
            action: 'authn.deny',
            target: method,
            outcome: 'denied',
            details: { reason: e.message },
          });
        }
        throw e;
      }
      if (!isAllowed(method, ctx.caller)) {
        await d.auditor.log(ctx, {
          action: 'authz.deny',
          target: method,
          outcome: 'denied',
          details: { callerKind: ctx.caller.kind },
        });
        throw new PermissionDeniedError(`${ctx.caller.kind} callers may not call ${method}`);
      }
      req.contextValues.set(requestKey, ctx);
      const res = await next(req);
      res.header.set('tessera-correlation-id', correlationId);
      if (!res.stream) {
        d.observe(method, 'ok', (performance.now() - started) / 1000);
        return res;
      }
      return {
        ...res,
        message: mapStreamErrors(res, fail, () =>
          d.observe(method, 'ok', (performance.now() - started) / 1000),
        ),
      } as StreamResponse;
    } catch (e) {
      throw fail(e);
    }
  };
}

async function* mapStreamErrors<T>(
  res: { message: AsyncIterable<T> },
  fail: (e: unknown) => Error,
  done: () => void,
): AsyncIterable<T> {
  try {
    yield* res.message;
    done();
  } catch (e) {
    throw fail(e);
  }
}

const codeNames = [
  'ok',
  'canceled',
  'unknown',
  'invalid_argument',
  'deadline_exceeded',
  'not_found',
  'already_exists',
  'permission_denied',
  'resource_exhausted',
  'failed_precondition',
  'aborted',
  'out_of_range',
  'unimplemented',
  'internal',
  'unavailable',
  'data_loss',
  'unauthenticated',
];

function codeName(code: number): string {
  return codeNames[code] ?? String(code);
}
