// Workload API failures as Tessera errors (stable codes), and the retry rule of the Workload
// Endpoint spec: retry on Unavailable and PermissionDenied (and on a broken or ended stream),
// never on InvalidArgument (a client bug, e.g. the security header) or Unimplemented.
import { Code, ConnectError } from '@connectrpc/connect';
import { TesseraError } from '../../core/errors.ts';
import { errorCodeFromConnect } from '../../wire/connect-codes.ts';

/** The server sent something this client cannot use; the stream is reopened after a backoff. */
export class WorkloadResponseError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', `malformed Workload API response: ${message}`, options);
    this.name = 'WorkloadResponseError';
  }
}

/** A ConnectError (or anything else) as a TesseraError with the gRPC error as its cause. */
export function toWorkloadError(e: unknown): TesseraError {
  if (e instanceof TesseraError) return e;
  if (e instanceof ConnectError) {
    const code =
      e.code === Code.Internal
        ? isSystemError(e.cause)
          ? 'unavailable'
          : 'internal'
        : (errorCodeFromConnect(e.code) ?? 'unavailable');
    return new TesseraError(code, `Workload API: ${e.rawMessage || Code[e.code]}`, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new TesseraError('unavailable', `Workload API: ${msg}`, { cause: e });
}

// connect-node reports a failed dial (ENOENT, ECONNREFUSED, ...) as Internal: it is Unavailable.
function isSystemError(e: unknown): boolean {
  return e instanceof Error && typeof (e as { syscall?: unknown }).syscall === 'string';
}

/** False for the codes the spec says never to retry. */
export function isRetryable(e: unknown): boolean {
  const code = toWorkloadError(e).code;
  return code !== 'invalid_argument' && code !== 'unimplemented';
}
