// The key journal: one row per (server, key ref), upserted as the key moves
// pending → committed → retired, and deleted once the key file is gone.
import type { KeyJournalState, KeyJournalStore } from '../types.ts';
import type { SqlContext } from './dialect.ts';

export function keyJournalStore(ctx: SqlContext): KeyJournalStore {
  const { db } = ctx;
  return {
    async set(serverId, keyRef, state, now) {
      await db
        .insertInto('key_journal')
        .values({ server_id: serverId, key_ref: keyRef, state, updated_at: now })
        .onConflict((oc) =>
          oc.columns(['server_id', 'key_ref']).doUpdateSet({ state, updated_at: now }),
        )
        .execute();
    },
    async list(serverId) {
      const rows = await db
        .selectFrom('key_journal')
        .selectAll()
        .where('server_id', '=', serverId)
        .orderBy('key_ref')
        .execute();
      return rows.map((r) => ({
        serverId: r.server_id,
        keyRef: r.key_ref,
        state: r.state as KeyJournalState,
        updatedAt: Number(r.updated_at),
      }));
    },
    async delete(serverId, keyRef) {
      await db
        .deleteFrom('key_journal')
        .where('server_id', '=', serverId)
        .where('key_ref', '=', keyRef)
        .execute();
    },
  };
}
