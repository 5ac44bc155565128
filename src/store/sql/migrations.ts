// Versioned schema migrations, applied in order at start inside one transaction. A version is
// never edited once released: changes go in a new version appended to the list.
import { sql } from 'kysely';
import { FailedPreconditionError } from '../../core/errors.ts';
import { GENESIS_HASH } from '../../core/audit.ts';
import type { Db, DdlTypes, SqlDialect } from './dialect.ts';
import type { Clock } from '../../core/clock.ts';
import { accessAndPostureMigrations } from './migrations-access.ts';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** DDL statements, spelled with the dialect's column types. */
  statements(t: DdlTypes): string[];
}

/** v1, part 1: registration entries and the selector index. */
const v1Entries = (t: DdlTypes): string[] => [
  `create table entries (
    id ${t.key} not null constraint entries_pkey primary key,
    spiffe_id text not null,
    parent_id text not null,
    selectors text not null,
    identity_hash text not null constraint entries_identity_uq unique,
    x509_svid_ttl bigint not null,
    jwt_svid_ttl bigint not null,
    dns_names text not null,
    federates_with text not null,
    admin integer not null,
    downstream integer not null,
    expires_at bigint,
    hint text not null,
    revision bigint not null,
    created_at bigint not null)`,
  `create index entries_spiffe_id_idx on entries (spiffe_id, id)`,
  `create index entries_parent_id_idx on entries (parent_id, id)`,
  // The selector filter reads (type, value) → entry ids from this index alone.
  `create table entry_selectors (
    entry_id ${t.key} not null references entries (id) on delete cascade,
    type text not null,
    value text not null,
    constraint entry_selectors_pkey primary key (entry_id, type, value))`,
  `create index entry_selectors_lookup_idx on entry_selectors (type, value, entry_id)`,
];

/** v1, part 2: nodes, join tokens, bundles and authorities. */
const v1Trust = (t: DdlTypes): string[] => [
  `create table nodes (
    spiffe_id ${t.key} not null constraint nodes_pkey primary key,
    attestation_type text not null,
    serial_number text not null,
    new_serial_number text not null,
    expires_at bigint not null,
    selectors text not null,
    banned integer not null,
    can_reattest integer not null,
    created_at bigint not null,
    updated_at bigint not null)`,
  `create table join_tokens (
    token_hash text not null constraint join_tokens_pkey primary key,
    spiffe_id text not null,
    expires_at bigint not null,
    created_at bigint not null)`,
  `create index join_tokens_expires_at_idx on join_tokens (expires_at)`,
  `create table bundles (
    trust_domain ${t.key} not null constraint bundles_pkey primary key,
    sequence bigint not null,
    refresh_hint bigint not null,
    document text not null)`,
  `create table authorities (
    kind text not null,
    id text not null,
    server_id text not null,
    status text not null,
    key_ref text not null,
    key_type text not null,
    public_key_der ${t.bytes} not null,
    cert_chain text not null,
    not_before bigint not null,
    not_after bigint not null,
    tainted integer not null,
    created_at bigint not null,
    constraint authorities_pkey primary key (kind, id))`,
];

/** v1, part 3: the audit chain and the change feed. */
const v1Logs = (t: DdlTypes): string[] => [
  `create table audit (
    seq bigint not null constraint audit_pkey primary key,
    time bigint not null,
    actor text not null,
    action text not null,
    target text not null,
    outcome text not null,
    correlation_id text not null,
    details text not null,
    prev_hash text not null,
    hash text not null)`,
  `create index audit_action_idx on audit (action, seq)`,
  `create index audit_actor_idx on audit (actor, seq)`,
  `create table audit_head (
    id integer not null constraint audit_head_pkey primary key,
    seq bigint not null,
    hash text not null)`,
  `insert into audit_head (id, seq, hash) values (1, 0, '${GENESIS_HASH}')`,
  `create table changes (
    id ${t.autoId},
    kind text not null,
    target_id text not null,
    op text not null,
    created_at bigint not null)`,
  `create index changes_created_at_idx on changes (created_at)`,
];

const v1: Migration = {
  version: 1,
  name: 'initial schema',
  statements: (t) => [...v1Entries(t), ...v1Trust(t), ...v1Logs(t)],
};

/** v2: revoked access tokens (RFC 7009), kept by jti until the token's own expiry. */
const v2: Migration = {
  version: 2,
  name: 'revoked tokens',
  statements: (t) => [
    `create table revoked_tokens (
      jti ${t.key} not null constraint revoked_tokens_pkey primary key,
      expires_at bigint not null,
      revoked_at bigint not null)`,
    `create index revoked_tokens_expires_at_idx on revoked_tokens (expires_at)`,
  ],
};

/** v3: SPIFFE federation relationships and their fetch status (docs/federation.md). */
const v3: Migration = {
  version: 3,
  name: 'federation relationships',
  statements: (t) => [
    `create table federations (
      trust_domain ${t.key} not null constraint federations_pkey primary key,
      bundle_endpoint_url text not null,
      profile text not null,
      endpoint_spiffe_id text not null,
      source text not null,
      created_at bigint not null,
      updated_at bigint not null,
      last_fetch_at bigint not null,
      last_success_at bigint not null,
      last_error text not null,
      next_attempt_at bigint not null,
      failures integer not null)`,
  ],
};

/** v4: STS issuers and trust policies managed through the admin API, and their revision. */
const v4: Migration = {
  version: 4,
  name: 'sts issuers and trust policies',
  statements: (t) => [
    `create table sts_issuers (
      issuer ${t.key} not null constraint sts_issuers_pkey primary key,
      audiences text not null,
      key_source text not null,
      jwks text not null,
      created_at bigint not null,
      updated_at bigint not null)`,
    `create table trust_policies (
      name ${t.key} not null constraint trust_policies_pkey primary key,
      issuer text not null,
      condition text not null,
      attribute_mapping text not null,
      spiffe_id text not null,
      access_token_audience text not null,
      access_token_scopes text not null,
      ttl text not null,
      template text not null,
      created_at bigint not null,
      updated_at bigint not null)`,
    `create index trust_policies_issuer_idx on trust_policies (issuer)`,
    `create table sts_revision (
      id integer not null constraint sts_revision_pkey primary key,
      revision bigint not null)`,
    `insert into sts_revision (id, revision) values (1, 0)`,
  ],
};

/** v5: DPoP proof jtis seen at the token endpoint (RFC 9449 replay check), until their expiry. */
const v5: Migration = {
  version: 5,
  name: 'dpop proofs',
  statements: (t) => [
    `create table dpop_proofs (
      jti ${t.key} not null constraint dpop_proofs_pkey primary key,
      expires_at bigint not null)`,
    `create index dpop_proofs_expires_at_idx on dpop_proofs (expires_at)`,
  ],
};

/**
 * v6: trust policies created through the API may require DPoP and may be introspection clients,
 * as config policies can.
 */
const v6: Migration = {
  version: 6,
  name: 'trust policy require_dpop and introspection_client',
  statements: () => [
    `alter table trust_policies add column access_token_require_dpop integer not null default 0`,
    `alter table trust_policies add column introspection_client integer not null default 0`,
  ],
};

/**
 * v7: the key journal (KeyJournalStore): which key files a server generated and whether their
 * authority committed or retired. Key files are deleted only on its word.
 */
const v7: Migration = {
  version: 7,
  name: 'key journal',
  statements: (t) => [
    `create table key_journal (
      server_id ${t.key} not null,
      key_ref ${t.key} not null,
      state text not null,
      updated_at bigint not null,
      constraint key_journal_pkey primary key (server_id, key_ref))`,
  ],
};

export const migrations: readonly Migration[] = [
  v1,
  v2,
  v3,
  v4,
  v5,
  v6,
  v7,
  ...accessAndPostureMigrations,
];

/** Applies the missing migrations; returns the versions applied. */
export async function migrate(
  db: Db,
  dialect: SqlDialect,
  clock: Clock,
  list: readonly Migration[] = migrations,
): Promise<number[]> {
  return db.transaction().execute(async (trx) => {
    await dialect.lockMigrations(trx);
    await sql`create table if not exists schema_migrations (
      version integer not null primary key,
      name text not null,
      applied_at bigint not null)`.execute(trx);
    const rows = await trx.selectFrom('schema_migrations').select('version').execute();
    const done = new Set(rows.map((r) => Number(r.version)));
    const known = new Set(list.map((m) => m.version));
    const unknown = [...done].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      throw new FailedPreconditionError(
        `datastore schema version ${Math.max(...unknown)} is newer than this server understands`,
      );
    }
    const applied: number[] = [];
    for (const m of [...list].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      for (const stmt of m.statements(dialect.ddl)) await sql.raw(stmt).execute(trx);
      await trx
        .insertInto('schema_migrations')
        .values({ version: m.version, name: m.name, applied_at: clock.now() })
        .execute();
      applied.push(m.version);
    }
    return applied;
  });
}
