// The access model (types.ts AccessStore): server workloads, credential providers and access
// policies. Every write runs in a transaction that announces the `access` topic; references are
// checked in that transaction under row locks (access-rows.ts), never from memory.
import { AlreadyExistsError, NotFoundError } from '../../core/errors.ts';
import type { AccessStore } from '../types.ts';
import { atomic, type Db, lockRows, type SqlContext } from './dialect.ts';
import {
  checkPolicyRefs,
  policyOf,
  policyRow,
  providerOf,
  providerRow,
  q,
  refuseIfReferenced,
  workloadOf,
  workloadRow,
} from './access-rows.ts';
import { importAccessDocument } from './access-import.ts';

type Table = 'server_workloads' | 'credential_providers' | 'access_policies';

const what: Readonly<Record<Table, string>> = {
  server_workloads: 'server workload',
  credential_providers: 'credential provider',
  access_policies: 'access policy',
};

async function refuseTaken(tx: Db, table: Table, name: string): Promise<void> {
  const row = await tx.selectFrom(table).select('name').where('name', '=', name).executeTakeFirst();
  if (row) throw new AlreadyExistsError(`${what[table]} ${q(name)} already exists`);
}

const notFound = (table: Table, name: string) =>
  new NotFoundError(`${what[table]} ${q(name)} does not exist`);

export function accessStore(ctx: SqlContext): AccessStore {
  const { db } = ctx;
  /** One transaction that announces `access` once its write is done. */
  const write = <T>(fn: (tx: Db) => Promise<T>): Promise<T> =>
    atomic(ctx, async (tx) => {
      const out = await fn(tx);
      await ctx.notifier.announce(tx, 'access');
      return out;
    });
  /** Locks and returns the row named, or throws NotFoundError. */
  const locked = async <T extends Table>(tx: Db, table: T, name: string) => {
    const row = await lockRows(
      ctx,
      tx
        .selectFrom(table as Table)
        .selectAll()
        .where('name', '=', name),
    ).executeTakeFirst();
    if (!row) throw notFound(table, name);
    return row;
  };

  return {
    createServerWorkload: (w) =>
      write(async (tx) => {
        await refuseTaken(tx, 'server_workloads', w.name);
        await tx.insertInto('server_workloads').values(workloadRow(w)).execute();
        return w;
      }),
    async getServerWorkload(name) {
      const row = await db
        .selectFrom('server_workloads')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      return row ? workloadOf(row) : null;
    },
    async listServerWorkloads() {
      const rows = await db.selectFrom('server_workloads').selectAll().orderBy('name').execute();
      return rows.map(workloadOf);
    },
    updateServerWorkload: (w) =>
      write(async (tx) => {
        const { name: _name, created_at: _created, ...fields } = workloadRow(w);
        const row = await tx
          .updateTable('server_workloads')
          .set(fields)
          .where('name', '=', w.name)
          .returningAll()
          .executeTakeFirst();
        if (!row) throw notFound('server_workloads', w.name);
        return workloadOf(row);
      }),
    deleteServerWorkload: (name) =>
      write(async (tx) => {
        await locked(tx, 'server_workloads', name);
        await refuseIfReferenced(tx, 'server', 'server workload', name);
        const row = await tx
          .deleteFrom('server_workloads')
          .where('name', '=', name)
          .returningAll()
          .executeTakeFirstOrThrow();
        return workloadOf(row);
      }),

    createCredentialProvider: (p) =>
      write(async (tx) => {
        await refuseTaken(tx, 'credential_providers', p.name);
        await tx.insertInto('credential_providers').values(providerRow(p)).execute();
        return p;
      }),
    async getCredentialProvider(name) {
      const row = await db
        .selectFrom('credential_providers')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      return row ? providerOf(row) : null;
    },
    async listCredentialProviders() {
      const rows = await db
        .selectFrom('credential_providers')
        .selectAll()
        .orderBy('name')
        .execute();
      return rows.map(providerOf);
    },
    deleteCredentialProvider: (name) =>
      write(async (tx) => {
        await locked(tx, 'credential_providers', name);
        await refuseIfReferenced(tx, 'credential_provider', 'credential provider', name);
        const row = await tx
          .deleteFrom('credential_providers')
          .where('name', '=', name)
          .returningAll()
          .executeTakeFirstOrThrow();
        return providerOf(row);
      }),

    createAccessPolicy: (p) =>
      write(async (tx) => {
        await refuseTaken(tx, 'access_policies', p.name);
        await checkPolicyRefs(ctx, tx, p);
        await tx.insertInto('access_policies').values(policyRow(p)).execute();
        return p;
      }),
    async getAccessPolicy(name) {
      const row = await db
        .selectFrom('access_policies')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      return row ? policyOf(row) : null;
    },
    async listAccessPolicies(filter = {}) {
      let query = db.selectFrom('access_policies').selectAll();
      if (filter.server !== undefined) query = query.where('server', '=', filter.server);
      const rows = await query.orderBy('name').execute();
      return rows.map(policyOf);
    },
    updateAccessPolicy: (p) =>
      write(async (tx) => {
        await locked(tx, 'access_policies', p.name);
        await checkPolicyRefs(ctx, tx, p);
        const { name: _name, created_at: _created, ...fields } = policyRow(p);
        const row = await tx
          .updateTable('access_policies')
          .set(fields)
          .where('name', '=', p.name)
          .returningAll()
          .executeTakeFirstOrThrow();
        return policyOf(row);
      }),
    deleteAccessPolicy: (name) =>
      write(async (tx) => {
        const row = await tx
          .deleteFrom('access_policies')
          .where('name', '=', name)
          .returningAll()
          .executeTakeFirst();
        if (!row) throw notFound('access_policies', name);
        return policyOf(row);
      }),

    importDocument: (doc) => write((tx) => importAccessDocument(ctx, tx, doc)),
  };
}
