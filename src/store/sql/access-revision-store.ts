// The access revision (types.ts AccessRevisionStore): one row. Writes announcing the `access`
// topic bump it inside their transaction (commit-notifier.ts announce); bump() is that announce
// alone, for a revocation that has nothing else to write.
import type { AccessRevisionStore } from '../types.ts';
import { type SqlContext, atomic } from './dialect.ts';

export function accessRevisionStore(ctx: SqlContext): AccessRevisionStore {
  const read = async (db: SqlContext['db']): Promise<number> => {
    const row = await db
      .selectFrom('access_revision')
      .select('revision')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return Number(row.revision);
  };
  return {
    current: () => read(ctx.db),
    bump: () =>
      atomic(ctx, async (db) => {
        await ctx.notifier.announce(db, 'access');
        return read(db);
      }),
  };
}
