// INTERIM wiring of the access model's injected checks, until the rooms that own them land
// (issue 10). Each is the safe stand-in: it refuses rather than allows, and ends nothing because
// nothing has been released yet. The integrator replaces each in compose/services.ts:
// - interimRevocation → the broker's AccessRevocation (`broker`).
import type { AccessRevocation } from '../../core/access.ts';

/** No broker yet, so no lease was ever released: nothing to end. */
export const interimRevocation: AccessRevocation = { revoke: async () => 0 };
