// DPoP proof jtis: one INSERT ... ON CONFLICT per proof. The unique key makes single use hold
// across every server sharing the database; a record whose expiry has passed (not yet pruned) is
// taken over by the conflicting insert, which RETURNING reports like a fresh one.
import type { DpopProofStore } from '../types.ts';
import type { SqlContext } from './dialect.ts';

export function dpopProofStore(ctx: SqlContext): DpopProofStore {
  const { db } = ctx;
  return {
    async record(jti, expiresAt, now) {
      const row = await db
        .insertInto('dpop_proofs')
        .values({ jti, expires_at: expiresAt })
        .onConflict((oc) =>
          oc
            .column('jti')
            .doUpdateSet({ expires_at: (eb) => eb.ref('excluded.expires_at') })
            .where('dpop_proofs.expires_at', '<=', now),
        )
        .returning('jti')
        .executeTakeFirst();
      return row !== undefined;
    },
    async pruneExpired(now) {
      const r = await db
        .deleteFrom('dpop_proofs')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
