// INTERIM wiring of the access model's injected checks, until the rooms that own them land
// (issue 10). Each is the safe stand-in: it refuses rather than allows, and ends nothing because
// nothing has been released yet. The integrator replaces each in compose/services.ts:
// - interimCheckPolicy → checkAccessPolicy of server/access/check-policy.ts (`access-decide`);
// - interimRevocation → the broker's AccessRevocation (`broker`).
import type { AccessRevocation } from '../../core/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { PolicyCheck } from '../access/access-admin-deps.ts';

/** Until the decision room's check: the client pattern must at least be a spiffe:// URI. */
export const interimCheckPolicy: PolicyCheck = (p) => {
  if (!p.client.startsWith('spiffe://'))
    throw new InvalidArgumentError(`client: "${p.client.slice(0, 64)}" is not a SPIFFE ID pattern`);
};

/** No broker yet, so no lease was ever released: nothing to end. */
export const interimRevocation: AccessRevocation = { revoke: async () => 0 };
