// Join tokens: single use is enforced by DELETE ... RETURNING, so of two concurrent consumers
// (even on different servers) exactly one gets the row.
import type { JoinTokenRecord, JoinTokenStore } from '../types.ts';
import type { SqlContext } from './dialect.ts';
import type { JoinTokenRow } from './schema.ts';

function fromRow(r: JoinTokenRow): JoinTokenRecord {
  return {
    tokenHash: r.token_hash,
    spiffeId: r.spiffe_id,
    expiresAt: Number(r.expires_at),
    createdAt: Number(r.created_at),
  };
}

export function joinTokenStore(ctx: SqlContext): JoinTokenStore {
  const { db } = ctx;
  return {
    async create(t) {
      await db
        .insertInto('join_tokens')
        .values({
          token_hash: t.tokenHash,
          spiffe_id: t.spiffeId,
          expires_at: t.expiresAt,
          created_at: t.createdAt,
        })
        .execute();
    },
    async consume(tokenHash, now) {
      const row = await db
        .deleteFrom('join_tokens')
        .where('token_hash', '=', tokenHash)
        .where('expires_at', '>', now)
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : fromRow(row);
    },
    async pendingExists(match, now) {
      let q = db.selectFrom('join_tokens').select('token_hash').where('expires_at', '>', now);
      if ('hashPrefix' in match) {
        // Hex only, so the LIKE pattern has no wildcards of the caller's making.
        if (!/^[0-9a-f]{1,64}$/.test(match.hashPrefix)) return false;
        q = q.where('token_hash', 'like', `${match.hashPrefix}%`);
      } else {
        if (match.spiffeId === '') return false;
        q = q.where('spiffe_id', '=', match.spiffeId);
      }
      return (await q.limit(1).executeTakeFirst()) !== undefined;
    },
    async pruneExpired(now) {
      const r = await db
        .deleteFrom('join_tokens')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
