// The secret store's tables: secrets (name → current version), secret_versions (ciphertext, nonce,
// wrapped data key, KEK id) and secret_keks (KEK records). A new version and the current pointer
// move in one transaction; a version is only added under a KEK the same transaction sees active.
// Every mutation announces the `access` topic.
import { sql } from 'kysely';
import { ConflictError, FailedPreconditionError, NotFoundError } from '../../core/errors.ts';
import type {
  KekRecord,
  KekState,
  SecretRecord,
  SecretStore,
  SecretVersionRecord,
} from '../types.ts';
import { bindBytes, checkLimit, toBytes } from './codec.ts';
import { atomic, type Db, type SqlContext } from './dialect.ts';
import type { SecretKekRow, SecretRow, SecretVersionRow } from './schema.ts';

const secretOf = (r: SecretRow): SecretRecord => ({
  name: r.name,
  currentVersion: Number(r.current_version),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const versionOf = (r: SecretVersionRow): SecretVersionRecord => ({
  name: r.name,
  version: Number(r.version),
  ciphertext: toBytes(r.ciphertext),
  nonce: toBytes(r.nonce),
  wrappedKey: toBytes(r.wrapped_key),
  kekId: r.kek_id,
  size: Number(r.size),
  createdAt: Number(r.created_at),
});

const kekOf = (r: SecretKekRow): KekRecord => ({
  id: r.id,
  state: r.state as KekState,
  owner: r.owner,
  checkValue: r.check_value,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const notFound = (name: string) => new NotFoundError(`secret "${name}" not found`);
const conflict = (msg: string) => new ConflictError(`conflict: ${msg}`);

/** The KEK row, locked against a concurrent state change until this transaction ends. */
async function kekForWrite(ctx: SqlContext, db: Db, id: string) {
  const q = db.selectFrom('secret_keks').select('state').where('id', '=', id);
  return (ctx.dialect.rowLocks ? q.forShare() : q).executeTakeFirst();
}

export function secretStore(ctx: SqlContext): SecretStore {
  const { db } = ctx;
  return {
    async get(name) {
      const r = await db
        .selectFrom('secrets')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      return r === undefined ? null : secretOf(r);
    },
    async list(limit) {
      checkLimit('limit', limit);
      const rows = await db
        .selectFrom('secrets')
        .selectAll()
        .orderBy('name')
        .limit(limit)
        .execute();
      return rows.map(secretOf);
    },
    async versions(name) {
      const rows = await db
        .selectFrom('secret_versions')
        .selectAll()
        .where('name', '=', name)
        .orderBy('version')
        .execute();
      return rows.map(versionOf);
    },
    async current(name) {
      const r = await db
        .selectFrom('secret_versions')
        .innerJoin('secrets', (j) =>
          j
            .onRef('secrets.name', '=', 'secret_versions.name')
            .onRef('secrets.current_version', '=', 'secret_versions.version'),
        )
        .selectAll('secret_versions')
        .where('secret_versions.name', '=', name)
        .executeTakeFirst();
      return r === undefined ? null : versionOf(r);
    },
    putVersion(v, keep) {
      checkLimit('keep', keep, 1000);
      return atomic(ctx, async (tx) => {
        const kek = await kekForWrite(ctx, tx, v.kekId);
        if (kek?.state !== 'active') throw conflict(`KEK ${v.kekId} is not active`);
        let row: SecretRow | undefined;
        if (v.version === 1) {
          row = await tx
            .insertInto('secrets')
            .values({
              name: v.name,
              current_version: 1,
              created_at: v.createdAt,
              updated_at: v.createdAt,
            })
            .onConflict((oc) => oc.column('name').doNothing())
            .returningAll()
            .executeTakeFirst();
        } else {
          row = await tx
            .updateTable('secrets')
            .set({ current_version: v.version, updated_at: v.createdAt })
            .where('name', '=', v.name)
            .where('current_version', '=', v.version - 1)
            .returningAll()
            .executeTakeFirst();
        }
        if (row === undefined) throw conflict(`secret "${v.name}" changed concurrently`);
        await tx
          .insertInto('secret_versions')
          .values({
            name: v.name,
            version: v.version,
            ciphertext: bindBytes(v.ciphertext),
            nonce: bindBytes(v.nonce),
            wrapped_key: bindBytes(v.wrappedKey),
            kek_id: v.kekId,
            size: v.size,
            created_at: v.createdAt,
          })
          .execute();
        await tx
          .deleteFrom('secret_versions')
          .where('name', '=', v.name)
          .where('version', '<=', v.version - keep)
          .execute();
        await ctx.notifier.announce(tx, 'access');
        return secretOf(row);
      });
    },
    delete(name) {
      return atomic(ctx, async (tx) => {
        // Versions first: SQLite enforces the cascade only with foreign keys on, PostgreSQL always.
        await tx.deleteFrom('secret_versions').where('name', '=', name).execute();
        const row = await tx
          .deleteFrom('secrets')
          .where('name', '=', name)
          .returningAll()
          .executeTakeFirst();
        if (row === undefined) throw notFound(name);
        await ctx.notifier.announce(tx, 'access');
        return secretOf(row);
      });
    },
    async wrappedBy(kekId, limit) {
      checkLimit('limit', limit);
      const rows = await db
        .selectFrom('secret_versions')
        .selectAll()
        .where('kek_id', '=', kekId)
        .orderBy('name')
        .orderBy('version')
        .limit(limit)
        .execute();
      return rows.map(versionOf);
    },
    async countWrappedBy(kekId) {
      const r = await db
        .selectFrom('secret_versions')
        .select(sql<number>`count(*)`.as('n'))
        .where('kek_id', '=', kekId)
        .executeTakeFirstOrThrow();
      return Number(r.n);
    },
    rewrap(name, version, fromKek, toKek, wrappedKey) {
      return atomic(ctx, async (tx) => {
        const r = await tx
          .updateTable('secret_versions')
          .set({ kek_id: toKek, wrapped_key: bindBytes(wrappedKey) })
          .where('name', '=', name)
          .where('version', '=', version)
          .where('kek_id', '=', fromKek)
          .executeTakeFirst();
        const done = Number(r.numUpdatedRows) > 0;
        if (done) await ctx.notifier.announce(tx, 'access');
        return done;
      });
    },
    async listKeks() {
      const rows = await db
        .selectFrom('secret_keks')
        .selectAll()
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(kekOf);
    },
    addKek(k) {
      return atomic(ctx, async (tx) => {
        await tx
          .insertInto('secret_keks')
          .values({
            id: k.id,
            state: k.state,
            owner: k.owner,
            check_value: k.checkValue,
            created_at: k.createdAt,
            updated_at: k.updatedAt,
          })
          .execute();
        await ctx.notifier.announce(tx, 'access');
      });
    },
    updateKek(id, state, checkValue, now) {
      return atomic(ctx, async (tx) => {
        const r = await tx
          .updateTable('secret_keks')
          .set({ state, check_value: checkValue, updated_at: now })
          .where('id', '=', id)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) throw new NotFoundError(`KEK ${id} not found`);
        await ctx.notifier.announce(tx, 'access');
      });
    },
    deleteKek(id) {
      return atomic(ctx, async (tx) => {
        const used = await tx
          .selectFrom('secret_versions')
          .select('name')
          .where('kek_id', '=', id)
          .limit(1)
          .executeTakeFirst();
        if (used !== undefined) {
          throw new FailedPreconditionError(`KEK ${id} still wraps data keys`);
        }
        await tx.deleteFrom('secret_keks').where('id', '=', id).execute();
        await ctx.notifier.announce(tx, 'access');
      });
    },
  };
}
