// Trust bundles. mutate() is a read-modify-write under the bundle's row lock, so concurrent
// rotations on several servers never lose one another's authorities. A change announces the
// `bundles` topic in its transaction, so other servers refresh their bundle caches on commit.
import { type Bundle, bundleEquals, emptyBundle } from '../../core/bundle.ts';
import type { BundleStore } from '../types.ts';
import { type SqlContext, atomic, lockRows } from './dialect.ts';
import { fromBundleRow, toBundleRow } from './bundle-document.ts';

async function mutateBundle(
  ctx: SqlContext,
  trustDomain: string,
  fn: (current: Bundle) => Bundle,
): Promise<Bundle> {
  return atomic(ctx, async (db) => {
    // A placeholder row gives a missing bundle something to lock; removed again if unchanged.
    const inserted = await db
      .insertInto('bundles')
      .values(toBundleRow(emptyBundle(trustDomain)))
      .onConflict((oc) => oc.column('trust_domain').doNothing())
      .returning('trust_domain')
      .executeTakeFirst();
    const row = await lockRows(
      ctx,
      db.selectFrom('bundles').selectAll().where('trust_domain', '=', trustDomain),
    ).executeTakeFirstOrThrow();
    const current = fromBundleRow(row);
    const next = { ...fn(current), trustDomain };
    if (bundleEquals(current, next)) {
      if (inserted !== undefined) {
        await db.deleteFrom('bundles').where('trust_domain', '=', trustDomain).execute();
      }
      return current;
    }
    const stored: Bundle = { ...next, sequence: current.sequence + 1 };
    const { trust_domain: _t, ...set } = toBundleRow(stored);
    await db.updateTable('bundles').set(set).where('trust_domain', '=', trustDomain).execute();
    await ctx.notifier.announce(db, 'bundles');
    return stored;
  });
}

export function bundleStore(ctx: SqlContext): BundleStore {
  const { db } = ctx;
  return {
    async get(trustDomain) {
      const row = await db
        .selectFrom('bundles')
        .selectAll()
        .where('trust_domain', '=', trustDomain)
        .executeTakeFirst();
      return row === undefined ? null : fromBundleRow(row);
    },
    async list() {
      const rows = await db.selectFrom('bundles').selectAll().orderBy('trust_domain').execute();
      return rows.map(fromBundleRow);
    },
    mutate: (trustDomain, fn) => mutateBundle(ctx, trustDomain, fn),
    async put(bundle) {
      const row = toBundleRow(bundle);
      const { trust_domain: _t, ...set } = row;
      await db
        .insertInto('bundles')
        .values(row)
        .onConflict((oc) => oc.column('trust_domain').doUpdateSet(set))
        .execute();
    },
    async putIfNotOlder(bundle) {
      const row = toBundleRow(bundle);
      const { trust_domain: _t, ...set } = row;
      // The upsert's WHERE is evaluated against the row as locked by the conflict, so a newer
      // bundle committed meanwhile by another server is never overwritten.
      const stored = await db
        .insertInto('bundles')
        .values(row)
        .onConflict((oc) =>
          oc
            .column('trust_domain')
            .doUpdateSet(set)
            .where('bundles.sequence', '<=', bundle.sequence),
        )
        .returning('trust_domain')
        .executeTakeFirst();
      return stored !== undefined;
    },
    async delete(trustDomain) {
      const r = await db
        .deleteFrom('bundles')
        .where('trust_domain', '=', trustDomain)
        .executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },
  };
}
