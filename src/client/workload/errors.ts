// Workload API failures as Tessera errors (stable codes), and the retry rule of the Workload
// Endpoint spec: retry on Unavailable and PermissionDenied (and on a broken or ended stream),
// never on InvalidArgument (a client bug, e.g. the security header) or Unimplemented.
import { Code, ConnectError } from '@connectrpc/connect';
import { TesseraError } from '../../core/errors.ts';
import { errorCodeFromConnect } from '../../wire/connect-codes.ts';
import type { WorkloadEndpoint } from './endpoint.ts';

/** The server sent something this client cannot use; the stream is reopened after a backoff. */
export class WorkloadResponseError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', `malformed Workload API response: ${message}`, options);
    this.name = 'WorkloadResponseError';
  }
}

/**
 * A ConnectError (or anything else) as a TesseraError with the gRPC error as its cause. With the
 * endpoint, a Unix socket nobody serves is said so: no file, or a file with no listener.
 */
export function toWorkloadError(e: unknown, endpoint?: WorkloadEndpoint): TesseraError {
  if (e instanceof TesseraError) return e;
  const absent = endpoint?.kind === 'unix' ? noListener(endpoint.path, e) : null;
  if (absent) return new TesseraError('unavailable', `Workload API: ${absent}`, { cause: e });
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

/** Why a dial of the Unix socket at `socketPath` found no agent, or null if it did not fail so. */
function noListener(socketPath: string, e: unknown): string | null {
  const errno = systemErrorCode(e);
  if (errno === 'ECONNREFUSED') {
    return `no agent is listening on ${socketPath} (the socket file exists, but nothing accepts connections)`;
  }
  if (errno === 'ENOENT') {
    return `no agent is listening on ${socketPath} (there is no socket file)`;
  }
  return null;
}

/** The errno name (ENOENT, ECONNREFUSED, ...) of a failed system call in `e`'s cause chain. */
function systemErrorCode(e: unknown): string | undefined {
  for (let c: unknown = e, i = 0; c instanceof Error && i < 5; c = c.cause, i++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
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
