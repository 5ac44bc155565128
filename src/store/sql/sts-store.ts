// STS issuers and trust policies registered through the admin API. Each mutation bumps the single
// sts_revision row in the same transaction: servers sharing the database poll that one row and
// reload when it moved (src/server/sts/registry.ts).
import { sql } from 'kysely';
import { FailedPreconditionError, NotFoundError } from '../../core/errors.ts';
import type { StsIssuerRecord, StsKeySource, StsStore, TrustPolicyRecord } from '../types.ts';
import { atomic, type Db, lockRows, type SqlContext } from './dialect.ts';
import type { StsIssuerRow, TrustPolicyRow } from './schema.ts';

const issuerOf = (r: StsIssuerRow): StsIssuerRecord => ({
  issuer: r.issuer,
  audiences: JSON.parse(r.audiences) as string[],
  keySource: r.key_source as StsKeySource,
  jwks: r.jwks,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const policyOf = (r: TrustPolicyRow): TrustPolicyRecord => ({
  name: r.name,
  issuer: r.issuer,
  condition: r.condition,
  attributeMapping: JSON.parse(r.attribute_mapping) as Record<string, string>,
  spiffeId: r.spiffe_id,
  accessTokenAudience: r.access_token_audience,
  accessTokenScopes: JSON.parse(r.access_token_scopes) as string[],
  accessTokenRequireDpop: Number(r.access_token_require_dpop) === 1,
  introspectionClient: Number(r.introspection_client) === 1,
  ttl: r.ttl,
  template: r.template,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

async function bump(db: Db): Promise<void> {
  await db
    .updateTable('sts_revision')
    .set({ revision: sql<number>`revision + 1` })
    .where('id', '=', 1)
    .execute();
}

export function stsStore(ctx: SqlContext): StsStore {
  const { db } = ctx;
  return {
    async addIssuer(r) {
      await atomic(ctx, async (tx) => {
        await tx
          .insertInto('sts_issuers')
          .values({
            issuer: r.issuer,
            audiences: JSON.stringify(r.audiences),
            key_source: r.keySource,
            jwks: r.jwks,
            created_at: r.createdAt,
            updated_at: r.updatedAt,
          })
          .execute();
        await bump(tx);
      });
      return r;
    },
    async getIssuer(issuer) {
      const row = await db
        .selectFrom('sts_issuers')
        .selectAll()
        .where('issuer', '=', issuer)
        .executeTakeFirst();
      return row ? issuerOf(row) : null;
    },
    async listIssuers() {
      const rows = await db.selectFrom('sts_issuers').selectAll().orderBy('issuer').execute();
      return rows.map(issuerOf);
    },
    async removeIssuer(issuer) {
      return atomic(ctx, async (tx) => {
        const row = await lockRows(
          ctx,
          tx.selectFrom('sts_issuers').selectAll().where('issuer', '=', issuer),
        ).executeTakeFirst();
        if (!row) throw new NotFoundError(`STS issuer "${issuer.slice(0, 256)}" is not registered`);
        const users = await tx
          .selectFrom('trust_policies')
          .select('name')
          .where('issuer', '=', issuer)
          .orderBy('name')
          .limit(11)
          .execute();
        if (users.length > 0) {
          const names = users.slice(0, 10).map((u) => `"${u.name}"`);
          throw new FailedPreconditionError(
            `STS issuer "${issuer.slice(0, 256)}" is used by trust polic${users.length > 1 ? 'ies' : 'y'} ${names.join(', ')}${users.length > 10 ? ', …' : ''}: delete them first`,
          );
        }
        await tx.deleteFrom('sts_issuers').where('issuer', '=', issuer).execute();
        await bump(tx);
        return issuerOf(row);
      });
    },
    async createPolicy(r) {
      await atomic(ctx, async (tx) => {
        await tx
          .insertInto('trust_policies')
          .values({
            name: r.name,
            issuer: r.issuer,
            condition: r.condition,
            attribute_mapping: JSON.stringify(r.attributeMapping),
            spiffe_id: r.spiffeId,
            access_token_audience: r.accessTokenAudience,
            access_token_scopes: JSON.stringify(r.accessTokenScopes),
            access_token_require_dpop: r.accessTokenRequireDpop ? 1 : 0,
            introspection_client: r.introspectionClient ? 1 : 0,
            ttl: r.ttl,
            template: r.template,
            created_at: r.createdAt,
            updated_at: r.updatedAt,
          })
          .execute();
        await bump(tx);
      });
      return r;
    },
    async getPolicy(name) {
      const row = await db
        .selectFrom('trust_policies')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      return row ? policyOf(row) : null;
    },
    async listPolicies() {
      const rows = await db
        .selectFrom('trust_policies')
        .selectAll()
        .orderBy('created_at')
        .orderBy('name')
        .execute();
      return rows.map(policyOf);
    },
    async deletePolicy(name) {
      return atomic(ctx, async (tx) => {
        const row = await tx
          .deleteFrom('trust_policies')
          .where('name', '=', name)
          .returningAll()
          .executeTakeFirst();
        if (!row) throw new NotFoundError(`trust policy "${name.slice(0, 64)}" does not exist`);
        await bump(tx);
        return policyOf(row);
      });
    },
    async revision() {
      const row = await db
        .selectFrom('sts_revision')
        .select('revision')
        .where('id', '=', 1)
        .executeTakeFirst();
      return Number(row?.revision ?? 0);
    },
  };
}
