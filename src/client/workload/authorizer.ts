// Authorizers decide whether an authenticated peer (its X509-SVID already verified against the
// bundle of its trust domain) may talk to us. They return an Error to refuse, undefined to allow.
import { PermissionDeniedError } from '../../core/errors.ts';
import { SpiffeId, TrustDomain } from '../../core/spiffe-id.ts';

export type Authorizer = (id: SpiffeId, chainDer: readonly Uint8Array[]) => Error | undefined;

const deny = (id: SpiffeId, why: string): Error =>
  new PermissionDeniedError(`peer ${id.toString()} is not authorized: ${why}`);

/** Any peer with a valid SVID from a trusted (own or federated) trust domain. */
export function authorizeAny(): Authorizer {
  return () => undefined;
}

export function authorizeId(expected: string | SpiffeId): Authorizer {
  const want = typeof expected === 'string' ? SpiffeId.parse(expected) : expected;
  return (id) => (id.equals(want) ? undefined : deny(id, `expected ${want.toString()}`));
}

export function authorizeOneOf(...expected: Array<string | SpiffeId>): Authorizer {
  const want = new Set(
    expected.map((e) => (typeof e === 'string' ? SpiffeId.parse(e) : e).toString()),
  );
  return (id) => (want.has(id.toString()) ? undefined : deny(id, 'not in the allowed set'));
}

/** Any workload of one trust domain ("example.org" or "spiffe://example.org"). */
export function authorizeMemberOf(trustDomain: string | TrustDomain): Authorizer {
  const td = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
  return (id) => (id.memberOf(td) ? undefined : deny(id, `not a member of ${td.name}`));
}

export function authorizeIf(
  predicate: (id: SpiffeId) => boolean,
  description = 'rule',
): Authorizer {
  return (id) => {
    let ok = false;
    try {
      ok = predicate(id);
    } catch {
      ok = false;
    }
    return ok ? undefined : deny(id, `${description} refused`);
  };
}
