// Schema versions 8 onwards: the access layer (server workloads, providers, policies, secrets,
// leases, correlation index, TLS facts) and workload posture and disclosure. Listed in order by
// migrations.ts; like every version, never edited once released.
import type { Migration } from './migrations.ts';

/**
 * v8: the access model (docs/access.md): server workloads, credential providers and access
 * policies. References are checked by the store under row locks (a deny policy names no
 * provider), so there are no foreign keys; the indexes serve those checks and the per-server list.
 */
const v8: Migration = {
  version: 8,
  name: 'access model',
  statements: (t) => [
    `create table server_workloads (
      name ${t.key} not null constraint server_workloads_pkey primary key,
      host text not null,
      port integer not null,
      protocol text not null,
      path_prefix text not null,
      present text not null,
      created_at bigint not null,
      updated_at bigint not null)`,
    `create table credential_providers (
      name ${t.key} not null constraint credential_providers_pkey primary key,
      type text not null,
      config text not null,
      created_at bigint not null,
      updated_at bigint not null)`,
    `create table access_policies (
      name ${t.key} not null constraint access_policies_pkey primary key,
      client text not null,
      server ${t.key} not null,
      credential_provider ${t.key} not null,
      condition text not null,
      effect text not null,
      created_at bigint not null,
      updated_at bigint not null)`,
    `create index access_policies_server_idx on access_policies (server, name)`,
    `create index access_policies_provider_idx on access_policies (credential_provider, name)`,
  ],
};

/**
 * v9: the secret store (docs/access.md): secrets with their current version, envelope-encrypted
 * versions (ciphertext, nonce, wrapped data key — never plaintext) and key-encryption key
 * records; at most one KEK is active (a partial unique index, so two servers starting at once
 * cannot both make one).
 */
const v9: Migration = {
  version: 9,
  name: 'secret store',
  statements: (t) => [
    `create table secrets (
      name ${t.key} not null constraint secrets_pkey primary key,
      current_version integer not null,
      created_at bigint not null,
      updated_at bigint not null)`,
    `create table secret_versions (
      name ${t.key} not null references secrets (name) on delete cascade,
      version integer not null,
      ciphertext ${t.bytes} not null,
      nonce ${t.bytes} not null,
      wrapped_key ${t.bytes} not null,
      kek_id text not null,
      size integer not null,
      created_at bigint not null,
      constraint secret_versions_pkey primary key (name, version))`,
    `create index secret_versions_kek_idx on secret_versions (kek_id, name, version)`,
    `create table secret_keks (
      id ${t.key} not null constraint secret_keks_pkey primary key,
      state text not null,
      owner text not null,
      check_value text not null,
      created_at bigint not null,
      updated_at bigint not null)`,
    `create unique index secret_keks_one_active on secret_keks (state) where state = 'active'`,
  ],
};

/**
 * v10: leases of dynamic credentials (LeaseStore). Indexed for the sweeper (state, expiry) and
 * for revocation by provider, policy, server, client and agent.
 */
const v10: Migration = {
  version: 10,
  name: 'leases',
  statements: (t) => [
    `create table leases (
      id ${t.key} not null constraint leases_pkey primary key,
      provider text not null,
      server text not null,
      client text not null,
      policy text not null,
      agent text not null,
      data text not null,
      state text not null,
      expires_at bigint not null,
      created_at bigint not null,
      claimed_at bigint not null,
      end_reason text not null,
      ended_at bigint)`,
    `create index leases_state_expires_idx on leases (state, expires_at)`,
    `create index leases_provider_idx on leases (provider, state)`,
    `create index leases_policy_idx on leases (policy, state)`,
    `create index leases_server_idx on leases (server, state)`,
    `create index leases_client_idx on leases (client, state)`,
    `create index leases_agent_idx on leases (agent, state)`,
  ],
};

/**
 * v11: audit records by correlation id (`tessera audit list --correlation-id`: the records of one
 * access), and the access revision agents compare to drop cached credentials (one row, bumped
 * with every write announcing the `access` topic). Starts at 1: 0 means "unset" on the wire.
 */
const v11: Migration = {
  version: 11,
  name: 'audit correlation id index and access revision',
  statements: () => [
    `create index audit_correlation_id_idx on audit (correlation_id, seq)`,
    `create table access_revision (
      id integer not null constraint access_revision_pkey primary key,
      revision bigint not null)`,
    `insert into access_revision (id, revision) values (1, 1)`,
  ],
};

/**
 * v12: the TLS facts of server workloads (docs/injection.md): whether the proxy connects with
 * TLS, the PEM CA it verifies against ("" = system roots), and whether the explicit proxy
 * terminates CONNECT. Existing https server workloads speak TLS.
 */
const v12: Migration = {
  version: 12,
  name: 'server workload tls',
  statements: () => [
    `alter table server_workloads add column tls integer not null default 0`,
    `alter table server_workloads add column tls_ca text not null default ''`,
    `alter table server_workloads add column tls_decrypt integer not null default 0`,
    `update server_workloads set tls = 1 where protocol = 'https'`,
  ],
};

/**
 * v13: posture (docs/posture.md). Entry conditions (CEL over the workload's attributes, '' =
 * none); the last scanner report per subject (image digest or binary sha256), replaced by each
 * import naming it; the import counter agents follow (sync.proto posture_revision).
 */
const v13: Migration = {
  version: 13,
  name: 'posture reports and entry conditions',
  statements: (t) => [
    `alter table entries add column condition text not null default ''`,
    `create table posture_reports (
      subject ${t.key} not null constraint posture_reports_pkey primary key,
      kind text not null,
      scanner text not null,
      artifact text not null,
      critical_count integer not null,
      high_count integer not null,
      medium_count integer not null,
      low_count integer not null,
      unknown_count integer not null,
      fixable_count integer not null,
      scanned_at bigint not null,
      import_version bigint not null,
      imported_at bigint not null)`,
    `create table posture_revision (
      id integer not null constraint posture_revision_pkey primary key,
      revision bigint not null)`,
    `insert into posture_revision (id, revision) values (1, 0)`,
  ],
};

/**
 * v14: the attributes an entry discloses in its workload's signed identity document
 * (docs/identity-document.md): a JSON list of attribute paths, '[]' = none.
 */
const v14: Migration = {
  version: 14,
  name: 'entry disclose list',
  statements: () => [`alter table entries add column disclose text not null default '[]'`],
};

export const accessAndPostureMigrations: readonly Migration[] = [v8, v9, v10, v11, v12, v13, v14];
