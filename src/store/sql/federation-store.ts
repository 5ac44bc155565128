// Federation relationships: one row per foreign trust domain, holding the relationship's
// parameters and the last fetch outcome (shared by every server on the same database).
import { NotFoundError } from '../../core/errors.ts';
import type {
  FederationProfile,
  FederationRelationship,
  FederationSource,
  FederationStatus,
} from '../../core/federation.ts';
import type { FederationStore } from '../types.ts';
import { checkLimit } from './codec.ts';
import type { SqlContext } from './dialect.ts';
import type { FederationRow } from './schema.ts';

function statusColumns(
  s: FederationStatus,
): Omit<
  FederationRow,
  | 'trust_domain'
  | 'bundle_endpoint_url'
  | 'profile'
  | 'endpoint_spiffe_id'
  | 'source'
  | 'created_at'
  | 'updated_at'
> {
  return {
    last_fetch_at: s.lastFetchAt,
    last_success_at: s.lastSuccessAt,
    last_error: s.lastError,
    next_attempt_at: s.nextAttemptAt,
    failures: s.failures,
  };
}

function toRow(r: FederationRelationship): FederationRow {
  return {
    trust_domain: r.trustDomain,
    bundle_endpoint_url: r.bundleEndpointUrl,
    profile: r.profile,
    endpoint_spiffe_id: r.endpointSpiffeId,
    source: r.source,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    ...statusColumns(r.status),
  };
}

function fromRow(r: FederationRow): FederationRelationship {
  return {
    trustDomain: r.trust_domain,
    bundleEndpointUrl: r.bundle_endpoint_url,
    profile: r.profile as FederationProfile,
    endpointSpiffeId: r.endpoint_spiffe_id,
    source: r.source as FederationSource,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    status: {
      lastFetchAt: Number(r.last_fetch_at),
      lastSuccessAt: Number(r.last_success_at),
      lastError: r.last_error,
      nextAttemptAt: Number(r.next_attempt_at),
      failures: Number(r.failures),
    },
  };
}

const notFound = (td: string) =>
  new NotFoundError(`federation relationship with "${td}" not found`);

export function federationStore(ctx: SqlContext): FederationStore {
  const { db } = ctx;
  return {
    async create(r) {
      const row = await db
        .insertInto('federations')
        .values(toRow(r))
        .returningAll()
        .executeTakeFirstOrThrow();
      return fromRow(row);
    },
    async get(trustDomain) {
      const row = await db
        .selectFrom('federations')
        .selectAll()
        .where('trust_domain', '=', trustDomain)
        .executeTakeFirst();
      return row === undefined ? null : fromRow(row);
    },
    async list(limit) {
      checkLimit('limit', limit);
      const rows = await db
        .selectFrom('federations')
        .selectAll()
        .orderBy('trust_domain')
        .limit(limit)
        .execute();
      return rows.map(fromRow);
    },
    async update(r) {
      const row = await db
        .updateTable('federations')
        .set({
          bundle_endpoint_url: r.bundleEndpointUrl,
          profile: r.profile,
          endpoint_spiffe_id: r.endpointSpiffeId,
          source: r.source,
          updated_at: r.updatedAt,
        })
        .where('trust_domain', '=', r.trustDomain)
        .returningAll()
        .executeTakeFirst();
      if (row === undefined) throw notFound(r.trustDomain);
      return fromRow(row);
    },
    async delete(trustDomain) {
      const row = await db
        .deleteFrom('federations')
        .where('trust_domain', '=', trustDomain)
        .returningAll()
        .executeTakeFirst();
      if (row === undefined) throw notFound(trustDomain);
      return fromRow(row);
    },
    async setStatus(trustDomain, status) {
      const r = await db
        .updateTable('federations')
        .set(statusColumns(status))
        .where('trust_domain', '=', trustDomain)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
  };
}
