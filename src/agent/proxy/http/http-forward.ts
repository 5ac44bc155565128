// One proxied request, HTTP/1.1 or HTTP/2 from the client alike, as an ordered list of steps:
//   1. the target checked (bounded, no dot segments) and within the server workload's prefix;
//   2. one decision for this request: conn.credential({ method, path, host }) — a denial is 403
//      naming the failed condition, the server away 503;
//   3. the credential put where `present` says (presenters.ts), replacing the client's — or, for
//      `aws-sigv4`, the request re-signed with the brokered AWS credentials (sigv4-forward.ts);
//   4. sent upstream over this client connection's pool (keep-alive; TLS verified), body
//      streamed with its length enforced (a body longer or shorter than declared is an error,
//      never a second request on the upstream connection);
//   5. the answer streamed back with the credential masked in headers and body (scrub.ts).
// Redirects are answered to the client as they are: the proxy never follows one.
import type { Http2ServerRequest } from 'node:http2';
import type { Readable } from 'node:stream';
import type { CredentialValue } from '../../../core/access.ts';
import type { Clock } from '../../../core/clock.ts';
import type { ProxyConnection } from '../proxy-connection.ts';
import {
  answer,
  answerOf,
  HttpAnswer,
  type ClientRequest,
  type ClientResponse,
} from './http-answer.ts';
import { injectionFor, type Injection } from './presenters.ts';
import {
  checkTarget,
  hostHeader,
  requestBodyFraming,
  requestHeadText,
  underPrefix,
  upstreamHeaders,
  upstreamTarget,
  type HeaderMap,
  type RequestBodyFraming,
} from './request-head.ts';
import { Scrubber } from './scrub.ts';
import { resignForUpstream, type Resigned } from './sigv4-forward.ts';
import { exchange } from './upstream-exchange.ts';
import { discardBody } from './http1-connection.ts';
import { upstreamIsTls, type UpstreamPool } from './upstream-pool.ts';

/** Serves one request for a bound connection; settles when the response is done. */
export async function forwardToServerWorkload(
  conn: ProxyConnection,
  pool: UpstreamPool,
  req: ClientRequest,
  res: ClientResponse,
): Promise<void> {
  const w = conn.server;
  const target = req.url ?? '';
  let injected: Injected | null = null;
  let resigned: Resigned | null = null;
  try {
    const { path } = checkTarget(target);
    if (!underPrefix(path, w.pathPrefix)) {
      throw new HttpAnswer(403, {
        error: `path ${path.slice(0, 200)} is outside server workload "${w.name}" (path prefix ${w.pathPrefix})`,
      });
    }
    const released = await conn.credential({ method: req.method ?? 'GET', path, host: w.host });
    const value = released.credential.value;
    if (w.present === 'aws-sigv4') {
      resigned = await resignForUpstream(
        req,
        target,
        hostHeader(w, upstreamIsTls(w)),
        value,
        CLOCK,
      );
    } else if (w.present !== '') injected = injectedFor(conn, w.present, value);
  } catch (e) {
    discardBody(req as Readable);
    return answer(res, answerOf(e, conn.log));
  }
  if (resigned !== null) {
    const { headers, body, scrubber } = resigned;
    const where = `${w.host}:${w.port}`;
    return relay(req, res, { pool, where, path: target, headers, body, scrubber, log: conn.log });
  }
  const injection = injected?.injection ?? null;
  await relay(req, res, {
    pool,
    where: `${w.host}:${w.port}`,
    path: upstreamTarget(target, injection),
    headers: upstreamHeaders(req.rawHeaders, hostHeader(w, upstreamIsTls(w)), injection),
    scrubber: injected?.scrubber ?? NO_SECRETS,
    log: conn.log,
  });
}

interface Injected {
  readonly present: string;
  readonly value: CredentialValue;
  readonly injection: Injection;
  readonly scrubber: Scrubber;
}

const NO_SECRETS = new Scrubber([]);
/** X-Amz-Date is checked against this (within 15 minutes, as AWS). */
const CLOCK: Clock = { now: () => Date.now() };
/**
 * The injection and scrubber last made on a client connection: the same credential comes back
 * request after request (the agent's cache), so they are made once per value, not per request.
 */
const lastInjected = new WeakMap<ProxyConnection, Injected>();

function injectedFor(conn: ProxyConnection, present: string, value: CredentialValue): Injected {
  const last = lastInjected.get(conn);
  if (last && last.present === present && sameValue(last.value, value)) return last;
  const injection = injectionFor(present, value);
  const made = { present, value, injection, scrubber: new Scrubber(injection.secrets) };
  lastInjected.set(conn, made);
  return made;
}

function sameValue(a: CredentialValue, b: CredentialValue): boolean {
  if (a === b) return true;
  if (a.kind === 'token' && b.kind === 'token') return a.token === b.token;
  if (a.kind === 'password' && b.kind === 'password') {
    return a.username === b.username && a.password === b.password;
  }
  return false;
}

export interface RelayOptions {
  readonly pool: UpstreamPool;
  /** host:port of the upstream, for messages. */
  readonly where: string;
  readonly path: string;
  readonly headers: HeaderMap;
  /** The body to send, when not the client's own (a stream made of it); its framing as headers say. */
  readonly body?: Readable;
  readonly scrubber: Scrubber;
  readonly log: ProxyConnection['log'];
}

/** Sends the request upstream and streams the answer back; never throws. */
export function relay(req: ClientRequest, res: ClientResponse, o: RelayOptions): Promise<void> {
  const method = req.method ?? 'GET';
  let head: string;
  let body: RequestBodyFraming;
  try {
    // An HTTP/1.1 body is announced in the head; an HTTP/2 one may follow without a length.
    const h2 = (req as Http2ServerRequest).stream as { endAfterHeaders?: boolean } | undefined;
    body = requestBodyFraming(o.headers, h2 !== undefined && h2.endAfterHeaders !== true);
    head = requestHeadText(method, o.path, o.headers);
  } catch (e) {
    discardBody(req as Readable);
    answer(res, answerOf(e, o.log));
    return Promise.resolve();
  }
  return exchange(res, {
    pool: o.pool,
    where: o.where,
    method,
    head,
    body,
    bodySource: o.body ?? (req as Readable),
    scrubber: o.scrubber,
    log: o.log,
  });
}
