// The Workload Endpoint spec's security header: every Workload API request carries gRPC metadata
// `workload.spiffe.io: true`. It proves the request was made deliberately by a gRPC client, not
// smuggled in by something tricked into talking to the socket (SSRF). Like SPIRE
// (pkg/agent/endpoints/middleware.go): exactly one value, exactly "true", and only for
// /SpiffeWorkloadAPI/* and the other workload-facing services on the socket (the credential API);
// health and reflection are open to generic tooling.
import type { Interceptor } from '@connectrpc/connect';
import { InvalidArgumentError } from '../../core/errors.ts';

export const SECURITY_HEADER = 'workload.spiffe.io';
export const WORKLOAD_SERVICE = 'SpiffeWorkloadAPI';

/**
 * True when the header is present once with value "true". Node joins repeated HTTP/2 header
 * fields with ", " before Connect sees them, so a repeated header never equals "true".
 */
export function hasSecurityHeader(header: Headers): boolean {
  return header.get(SECURITY_HEADER) === 'true';
}

/** `services`: the fully qualified service names whose methods require the header. */
export function securityHeaderInterceptor(
  services: readonly string[] = [WORKLOAD_SERVICE],
): Interceptor {
  const secured = new Set(services);
  return (next) => async (req) => {
    if (secured.has(req.service.typeName) && !hasSecurityHeader(req.header)) {
      throw new InvalidArgumentError('security header missing from request');
    }
    return next(req);
  };
}
