// The one place Tessera error codes become Connect/gRPC codes. Internal details never reach the
// client: they are logged with the correlation id, which the client sees.
import { Code, ConnectError } from '@connectrpc/connect';
import type { ErrorCode } from '../../core/errors.ts';
import { isTesseraError } from '../../core/errors.ts';

export const connectCodeOf: Record<ErrorCode, Code> = {
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

/** Converts any thrown value into the ConnectError the client sees. `log` receives internal ones. */
export function toConnectError(
  e: unknown,
  correlationId: string,
  log: (err: unknown) => void,
): ConnectError {
  if (e instanceof ConnectError) return e;
  if (isTesseraError(e) && e.code !== 'internal') {
    if (e.code === 'unavailable') log(e);
    return new ConnectError(e.message, connectCodeOf[e.code]);
  }
  log(e);
  return new ConnectError(`internal error (correlation id ${correlationId})`, Code.Internal);
}
