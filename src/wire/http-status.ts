// The HTTP status for each Tessera error code (core/errors.ts): the one table the agent's HTTP
// doors (credential API, proxy) answer with.
import type { ErrorCode } from '../core/errors.ts';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_argument: 400,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  unauthenticated: 401,
  failed_precondition: 412,
  resource_exhausted: 429,
  unavailable: 503,
  unimplemented: 501,
  internal: 500,
};
