// Values the edge attaches to each call: the transport's peer, then (after authentication in
// the interceptor) the RequestContext handlers use.
import { createContextKey, type HandlerContext } from '@connectrpc/connect';
import { TesseraError } from '../../core/errors.ts';
import type { Caller, RequestContext } from '../../core/caller.ts';
import type { Peer } from './authenticate.ts';

export const peerKey = createContextKey<Peer | undefined>(undefined, {
  description: 'transport peer',
});
export const requestKey = createContextKey<RequestContext | undefined>(undefined, {
  description: 'request context',
});

export function requestOf(ctx: HandlerContext): RequestContext {
  const r = ctx.values.get(requestKey);
  if (!r)
    throw new TesseraError('internal', 'request context missing: the auth interceptor did not run');
  return r;
}

export function agentCaller(ctx: HandlerContext): Extract<Caller, { kind: 'agent' }> {
  const c = requestOf(ctx).caller;
  if (c.kind !== 'agent')
    throw new TesseraError('internal', 'agent method reached by a non-agent caller');
  return c;
}
