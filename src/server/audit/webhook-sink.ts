// Export sink: batches POSTed as JSON ({"records": [...]}) to a webhook. The body is signed with
// HMAC-SHA256 under a shared secret (from a file), sent as `X-Tessera-Signature: sha256=<hex>`
// — the receiver recomputes it over the raw body before trusting anything in it. Each batch is
// tried a few times with exponential backoff; then the exporter backs off and tries again from
// its cursor, indefinitely.
import { createHmac } from 'node:crypto';
import type { ExportSink } from './export-record.ts';
import { postWithRetries } from './http-post.ts';

export const SIGNATURE_HEADER = 'x-tessera-signature';

export function signBody(secret: Buffer, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

export function webhookSink(o: {
  url: string;
  secret: Buffer;
  timeoutMs: number;
  attempts: number;
  onRetry?: (attempt: number, why: string) => void;
}): ExportSink {
  return {
    async deliver(records, signal) {
      const body = JSON.stringify({ records });
      await postWithRetries({
        url: o.url,
        body,
        headers: { [SIGNATURE_HEADER]: signBody(o.secret, body) },
        timeoutMs: o.timeoutMs,
        attempts: o.attempts,
        signal,
        ...(o.onRetry ? { onRetry: o.onRetry } : {}),
      });
    },
    close: async () => {},
  };
}
