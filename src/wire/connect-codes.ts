// The one table between Tessera error codes (core/errors.ts) and Connect/gRPC codes, both
// directions. The server API and the Workload API send codes through it; the CLI, the agent and
// the workload SDK read them back through it, so a failure keeps its code across the wire.
import { Code } from '@connectrpc/connect';
import type { ErrorCode } from '../core/errors.ts';

export const connectCodeOf: Readonly<Record<ErrorCode, Code>> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
  internal: Code.Internal,
};

const errorCodeByConnect: ReadonlyMap<Code, ErrorCode> = new Map(
  Object.entries(connectCodeOf).map(([e, c]) => [c, e as ErrorCode]),
);

/**
 * Codes Tessera never sends but transports and other gRPC servers produce (a deadline, an
 * aborted call), folded into the nearest Tessera code.
 */
const transportOnly: Readonly<Partial<Record<Code, ErrorCode>>> = {
  [Code.OutOfRange]: 'invalid_argument',
  [Code.Aborted]: 'failed_precondition',
  [Code.DeadlineExceeded]: 'unavailable',
};

/** The Tessera code a Connect code was sent for: the exact inverse of connectCodeOf. */
export function errorCodeFromConnect(code: Code): ErrorCode | undefined {
  return errorCodeByConnect.get(code);
}

/** errorCodeFromConnect, plus the transport-only codes; undefined for Canceled, Unknown, DataLoss. */
export function errorCodeFromTransport(code: Code): ErrorCode | undefined {
  return errorCodeByConnect.get(code) ?? transportOnly[code];
}
