// One proxied request, HTTP/1.1 or HTTP/2 from the client alike, as an ordered list of steps:
//   1. the target checked (bounded, no dot segments) and within the server workload's prefix;
//   2. one decision for this request: conn.credential({ method, path, host }) — a denial is 403
//      naming the failed condition, the server away 503;
//   3. the credential put where `present` says (presenters.ts), replacing the client's;
//   4. sent upstream over this client connection's pool (keep-alive; TLS verified), body
//      streamed with its length enforced (a body longer or shorter than declared is an error,
//      never a second request on the upstream connection);
//   5. the answer streamed back with the credential masked in headers and body (scrub.ts).
// Redirects are answered to the client as they are: the proxy never follows one.
import http from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { pipeline } from 'node:stream';
import type { ProxyConnection } from '../proxy-connection.ts';
import { answerHead, answerOf, HttpAnswer } from './http-answer.ts';
import { injectionFor, type Injection } from './presenters.ts';
import {
  checkTarget,
  clientHeaders,
  hostHeader,
  underPrefix,
  upstreamHeaders,
  upstreamTarget,
  type HeaderMap,
} from './request-head.ts';
import { Scrubber } from './scrub.ts';
import { upstreamIsTls, type UpstreamPool } from './upstream-pool.ts';

export type ClientRequest = http.IncomingMessage | Http2ServerRequest;
export type ClientResponse = http.ServerResponse | Http2ServerResponse;

/** Largest response head accepted from a server workload. */
export const MAX_RESPONSE_HEAD_BYTES = 32 * 1024;

export interface ForwardLimits {
  /** No byte from upstream for this long ends the request (504 before the head). Default 60 s. */
  readonly upstreamIdleMs: number;
}

/** Serves one request for a bound connection; settles when the response is done. */
export async function forwardToServerWorkload(
  conn: ProxyConnection,
  pool: UpstreamPool,
  req: ClientRequest,
  res: ClientResponse,
  limits: ForwardLimits,
): Promise<void> {
  const w = conn.server;
  const target = req.url ?? '';
  let injection: Injection | null = null;
  try {
    const { path } = checkTarget(target);
    if (!underPrefix(path, w.pathPrefix)) {
      throw new HttpAnswer(403, {
        error: `path ${path.slice(0, 200)} is outside server workload "${w.name}" (path prefix ${w.pathPrefix})`,
      });
    }
    const released = await conn.credential({ method: req.method ?? 'GET', path, host: w.host });
    if (w.present !== '') injection = injectionFor(w.present, released.credential.value);
  } catch (e) {
    req.resume();
    return answer(res, answerOf(e, conn.log));
  }
  const tls = upstreamIsTls(w);
  await relay(req, res, {
    agent: pool,
    host: w.host,
    port: w.port,
    path: upstreamTarget(target, injection),
    headers: upstreamHeaders(req.rawHeaders, hostHeader(w, tls), injection),
    scrubber: new Scrubber(injection?.secrets ?? []),
    log: conn.log,
    upstreamIdleMs: limits.upstreamIdleMs,
  });
}

export interface RelayOptions {
  readonly agent: http.Agent;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly headers: HeaderMap;
  readonly scrubber: Scrubber;
  readonly log: ProxyConnection['log'];
  readonly upstreamIdleMs: number;
}

/** Sends the request upstream and streams the answer back; never throws. */
export function relay(req: ClientRequest, res: ClientResponse, o: RelayOptions): Promise<void> {
  return new Promise<void>((resolve) => {
    const up = http.request({
      agent: o.agent,
      host: o.host,
      port: o.port,
      method: req.method ?? 'GET',
      path: o.path,
      headers: o.headers,
      maxHeaderSize: MAX_RESPONSE_HEAD_BYTES,
      // Forbids a body longer or shorter than its Content-Length.
      ...({ strictContentLength: true } as object),
    });
    up.setTimeout(o.upstreamIdleMs, () =>
      up.destroy(new HttpAnswer(504, { error: `${o.host}:${o.port} did not answer in time` })),
    );
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        resolve();
      }
    };
    up.on('error', (e) => {
      req.unpipe(up);
      if (!res.headersSent) {
        req.resume();
        const a =
          e instanceof HttpAnswer
            ? e
            : new HttpAnswer(502, {
                error: `could not reach ${o.host}:${o.port}: ${upstreamReason(e)}`,
              });
        if (!(e instanceof HttpAnswer)) o.log.warn({ err: e.message }, a.message);
        answer(res, a);
      } else {
        res.destroy();
      }
      finish();
    });
    up.on('response', (upres) => {
      const encoding = String(upres.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (!o.scrubber.empty && encoding !== 'identity') {
        upres.destroy();
        up.destroy();
        answer(
          res,
          new HttpAnswer(502, {
            error: `${o.host}:${o.port} answered with Content-Encoding ${encoding.slice(0, 40)} though identity was asked: the proxy cannot check it for the credential`,
          }),
        );
        return finish();
      }
      const headers = clientHeaders(upres.rawHeaders, (v) => o.scrubber.text(v));
      writeHead(res, upres.statusCode ?? 502, headers);
      const body = o.scrubber.empty ? [upres] : [upres, o.scrubber.body()];
      pipeline([...body, res] as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream], () =>
        finish(),
      );
    });
    req.once('aborted', () => up.destroy());
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
      finish();
    });
    pipeline(req as NodeJS.ReadableStream, up, (e) => {
      if (e) up.destroy(e);
    });
  });
}

function upstreamReason(e: Error): string {
  const code = (e as { code?: string }).code;
  return code ? `${code}: ${e.message}` : e.message;
}

/** The proxy's own answer (JSON), for HTTP/1.1 and HTTP/2 alike. */
export function answer(res: ClientResponse, a: HttpAnswer): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const { text, headers } = answerHead(a);
  writeHead(res, a.status, headers);
  res.end(text);
}

/** HTTP/1.1 and the HTTP/2 compatibility API take the same arguments; TypeScript needs one. */
function writeHead(
  res: ClientResponse,
  status: number,
  headers: HeaderMap | Record<string, string>,
): void {
  (res as http.ServerResponse).writeHead(status, headers);
}
