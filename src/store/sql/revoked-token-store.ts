// Revoked access tokens: an insert that ignores a second revocation of the same jti, and a plain
// primary-key read per check, so every server sharing the database sees a revocation at once.
import type { RevokedTokenStore } from '../types.ts';
import type { SqlContext } from './dialect.ts';

export function revokedTokenStore(ctx: SqlContext): RevokedTokenStore {
  const { db } = ctx;
  return {
    async revoke(jti, expiresAt, revokedAt) {
      await db
        .insertInto('revoked_tokens')
        .values({ jti, expires_at: expiresAt, revoked_at: revokedAt })
        .onConflict((oc) => oc.column('jti').doNothing())
        .execute();
    },
    async isRevoked(jti) {
      const row = await db
        .selectFrom('revoked_tokens')
        .select('jti')
        .where('jti', '=', jti)
        .executeTakeFirst();
      return row !== undefined;
    },
    async pruneExpired(now) {
      const r = await db
        .deleteFrom('revoked_tokens')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
