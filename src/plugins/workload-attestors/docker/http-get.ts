// One bounded GET: a deadline over the whole exchange (connect, headers and body), a cap on the
// body read (checked against Content-Length up front and counted while streaming), and the
// caller's abort signal. Used for the Docker Engine API (Unix socket) and the kubelet (HTTP(S)).
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import { parseDuration } from '../../../core/duration.ts';
import type { TesseraError } from '../../../core/errors.ts';
import {
  FailedPreconditionError,
  ResourceExhaustedError,
  UnavailableError,
} from '../../../core/errors.ts';

export interface BoundedGet {
  /** Prefix of error messages, e.g. "docker" or "k8s". */
  readonly what: string;
  /** Human name of the peer for messages: a socket path or a URL (never with credentials). */
  readonly peer: string;
  readonly https: boolean;
  readonly options: http.RequestOptions & https.RequestOptions;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly signal?: AbortSignal;
}

export interface BoundedResponse {
  readonly status: number;
  readonly body: Buffer;
}

export function boundedGet(o: BoundedGet): Promise<BoundedResponse> {
  return new Promise<BoundedResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, res?: BoundedResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(res as BoundedResponse);
    };
    const onAbort = () => finish(o.signal?.reason ?? new Error('aborted'));
    const timer = setTimeout(
      () =>
        finish(
          new UnavailableError(
            `${o.what}: ${o.peer} gave no complete response within ${o.timeoutMs} ms`,
          ),
        ),
      o.timeoutMs,
    );
    const req = (o.https ? https : http).request({ ...o.options, method: 'GET' }, (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > o.maxBytes) {
        finish(tooLarge(o));
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > o.maxBytes) finish(tooLarge(o));
        else chunks.push(chunk);
      });
      res.on('end', () =>
        finish(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) }),
      );
      res.on('error', (e) => finish(transportError(o, e)));
      res.on('aborted', () => finish(transportError(o, new Error('response aborted'))));
    });
    req.on('error', (e) => finish(transportError(o, e)));
    if (o.signal) {
      if (o.signal.aborted) {
        onAbort();
        return;
      }
      o.signal.addEventListener('abort', onAbort, { once: true });
    }
    req.end();
  });
}

function tooLarge(o: BoundedGet): ResourceExhaustedError {
  return new ResourceExhaustedError(
    `${o.what}: the response from ${o.peer} is larger than ${o.maxBytes} bytes (max_response_bytes)`,
  );
}

// TLS verification failures are configuration problems (wrong CA, wrong host name), not outages.
const tlsVerifyCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
]);

function transportError(o: BoundedGet, e: Error): TesseraError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code && tlsVerifyCodes.has(code)) {
    return new FailedPreconditionError(
      `${o.what}: TLS verification of ${o.peer} failed: ${e.message} (${code})`,
      { cause: e },
    );
  }
  return new UnavailableError(`${o.what}: cannot reach ${o.peer}: ${code ?? e.message}`, {
    cause: e,
  });
}

/** A duration as operators write it ("5s", "500ms"), compiled to milliseconds. */
export const durationMs = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(String(v), '');
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
