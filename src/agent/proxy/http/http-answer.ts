// The proxy's own HTTP answers (not the server workload's): JSON bodies, one mapping from errors
// to statuses. A denial names the reason, the deciding policy and the failed condition; an
// internal fault is logged with a correlation id and shown only as that id. Never a credential.
import { randomUUID } from 'node:crypto';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { isTesseraError } from '../../../core/errors.ts';
import { HTTP_STATUS } from '../../../wire/http-status.ts';
import { CredentialDeniedError } from '../../credentials/credential-service.ts';
import type { ProxyLog } from '../proxy-connection.ts';
import type { Http1Request } from './http1-connection.ts';
import type { Http1Response } from './http1-response.ts';

/** An answer ending the request: status and JSON body. */
export class HttpAnswer extends Error {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
  constructor(status: number, body: Record<string, unknown>) {
    super(String(body['error'] ?? status));
    this.name = 'HttpAnswer';
    this.status = status;
    this.body = body;
  }
}

/** The one place an error becomes the proxy's HTTP answer. */
export function answerOf(e: unknown, log: ProxyLog): HttpAnswer {
  if (e instanceof HttpAnswer) return e;
  if (e instanceof CredentialDeniedError) {
    const d = e.denial;
    return new HttpAnswer(403, {
      error: e.message,
      reason: d.reason,
      policy: d.policy,
      failed_condition: d.failedCondition,
      correlation_id: d.correlationId,
    });
  }
  if (isTesseraError(e) && e.code !== 'internal') {
    if (e.code === 'unavailable') log.warn({ cause: causeText(e.cause) }, e.message);
    return new HttpAnswer(HTTP_STATUS[e.code], { error: e.message });
  }
  const correlationId = randomUUID();
  log.warn({ correlationId, err: causeText(e) }, 'proxied HTTP request failed');
  return new HttpAnswer(500, { error: `internal error (correlation id ${correlationId})` });
}

function causeText(e: unknown): string | undefined {
  if (e === undefined) return undefined;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** The JSON text and headers of an answer (HTTP/1.1 and HTTP/2 alike). */
export function answerHead(a: HttpAnswer): { text: string; headers: Record<string, string> } {
  const text = JSON.stringify(a.body);
  return {
    text,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': String(Buffer.byteLength(text)),
    },
  };
}

/** A client's request: HTTP/1.1 (the proxy's reader) or HTTP/2 (node's compatibility API). */
export type ClientRequest = Http1Request | Http2ServerRequest;
export type ClientResponse = Http1Response | Http2ServerResponse;

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
export function writeHead(
  res: ClientResponse,
  status: number,
  headers: Record<string, string | string[]>,
): void {
  (res as Http1Response).writeHead(status, headers);
}
