// Row shapes of the SQL schema, as Kysely sees them. Booleans are stored as 0/1 integers and
// timestamps as epoch-ms bigints in both dialects, so one mapping serves SQLite and PostgreSQL.
import type { Generated } from 'kysely';

export interface EntryRow {
  id: string;
  spiffe_id: string;
  parent_id: string;
  /** JSON array of {type, value}, canonical order. */
  selectors: string;
  /** sha256 of (spiffe_id, parent_id, selector set): the unique duplicate key. */
  identity_hash: string;
  x509_svid_ttl: number;
  jwt_svid_ttl: number;
  /** JSON array of strings. */
  dns_names: string;
  /** JSON array of trust-domain names. */
  federates_with: string;
  admin: number;
  downstream: number;
  expires_at: number | null;
  hint: string;
  /** Migration 13; '' = none. */
  condition: string;
  /** Migration 14: JSON list of attribute paths disclosed in identity documents; '[]' = none. */
  disclose: string;
  revision: number;
  created_at: number;
}

export interface EntrySelectorRow {
  entry_id: string;
  type: string;
  value: string;
}

export interface NodeRow {
  spiffe_id: string;
  attestation_type: string;
  serial_number: string;
  new_serial_number: string;
  expires_at: number;
  /** JSON array of {type, value}. */
  selectors: string;
  banned: number;
  can_reattest: number;
  created_at: number;
  updated_at: number;
}

export interface JoinTokenRow {
  token_hash: string;
  spiffe_id: string;
  expires_at: number;
  created_at: number;
}

export interface BundleRow {
  trust_domain: string;
  sequence: number;
  refresh_hint: number;
  /** JSON document; DER bytes as base64 (see bundle-document.ts). */
  document: string;
}

export interface AuthorityRow {
  kind: string;
  id: string;
  server_id: string;
  status: string;
  key_ref: string;
  key_type: string;
  public_key_der: Uint8Array;
  /** JSON array of base64 DER certificates. */
  cert_chain: string;
  not_before: number;
  not_after: number;
  tainted: number;
  created_at: number;
}

export interface AuditRow {
  seq: number;
  time: number;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  correlation_id: string;
  /** JSON object. */
  details: string;
  prev_hash: string;
  hash: string;
}

/** One row (id = 1): the chain's tip, locked while appending so appends serialize. */
export interface AuditHeadRow {
  id: number;
  seq: number;
  hash: string;
}

export interface ChangeRow {
  id: Generated<number>;
  kind: string;
  target_id: string;
  op: string;
  created_at: number;
}

export interface RevokedTokenRow {
  jti: string;
  expires_at: number;
  revoked_at: number;
}

export interface FederationRow {
  trust_domain: string;
  bundle_endpoint_url: string;
  profile: string;
  endpoint_spiffe_id: string;
  source: string;
  created_at: number;
  updated_at: number;
  last_fetch_at: number;
  last_success_at: number;
  last_error: string;
  next_attempt_at: number;
  failures: number;
}

export interface DpopProofRow {
  jti: string;
  expires_at: number;
}

export interface SchemaMigrationRow {
  version: number;
  name: string;
  applied_at: number;
}

export interface StsIssuerRow {
  issuer: string;
  /** JSON array of strings. */
  audiences: string;
  /** jwks | discovery */
  key_source: string;
  /** JWK Set JSON text; "" for discovery. */
  jwks: string;
  created_at: number;
  updated_at: number;
}

export interface TrustPolicyRow {
  name: string;
  issuer: string;
  condition: string;
  /** JSON object attribute → CEL. */
  attribute_mapping: string;
  spiffe_id: string;
  access_token_audience: string;
  /** JSON array of strings. */
  access_token_scopes: string;
  access_token_require_dpop: number;
  introspection_client: number;
  ttl: string;
  template: string;
  created_at: number;
  updated_at: number;
}

/** One row (id = 1): bumped by every STS issuer/policy mutation. */
export interface StsRevisionRow {
  id: number;
  revision: number;
}

export interface KeyJournalRow {
  server_id: string;
  key_ref: string;
  state: string;
  updated_at: number;
}

export interface SecretRow {
  name: string;
  current_version: number;
  created_at: number;
  updated_at: number;
}

export interface SecretVersionRow {
  name: string;
  version: number;
  ciphertext: Uint8Array;
  nonce: Uint8Array;
  wrapped_key: Uint8Array;
  kek_id: string;
  size: number;
  created_at: number;
}

export interface SecretKekRow {
  id: string;
  state: string;
  owner: string;
  check_value: string;
  created_at: number;
  updated_at: number;
}

export interface ServerWorkloadRow {
  name: string;
  host: string;
  port: number;
  protocol: string;
  path_prefix: string;
  present: string;
  /** 0/1. */
  tls: number;
  tls_ca: string;
  /** 0/1. */
  tls_decrypt: number;
  created_at: number;
  updated_at: number;
}

export interface CredentialProviderRow {
  name: string;
  type: string;
  /** JSON object: the provider's non-secret settings. */
  config: string;
  created_at: number;
  updated_at: number;
}

export interface AccessPolicyRow {
  name: string;
  client: string;
  server: string;
  /** "" for a deny policy. */
  credential_provider: string;
  condition: string;
  /** allow | deny */
  effect: string;
  created_at: number;
  updated_at: number;
}

export interface LeaseRow {
  id: string;
  provider: string;
  server: string;
  client: string;
  policy: string;
  agent: string;
  /** JSON object of strings (provider-private, never a secret). */
  data: string;
  /** creating | active | ending | ended */
  state: string;
  expires_at: number;
  created_at: number;
  claimed_at: number;
  end_reason: string;
  ended_at: number | null;
}

/** One row (id = 1): the access revision (AccessRevisionStore). */
export interface PostureReportRow {
  subject: string;
  kind: string;
  scanner: string;
  artifact: string;
  critical_count: number;
  high_count: number;
  medium_count: number;
  low_count: number;
  unknown_count: number;
  fixable_count: number;
  scanned_at: number;
  import_version: number;
  imported_at: number;
}

export interface AccessRevisionRow {
  id: number;
  revision: number;
}

export interface Schema {
  entries: EntryRow;
  entry_selectors: EntrySelectorRow;
  nodes: NodeRow;
  join_tokens: JoinTokenRow;
  bundles: BundleRow;
  authorities: AuthorityRow;
  audit: AuditRow;
  audit_head: AuditHeadRow;
  changes: ChangeRow;
  revoked_tokens: RevokedTokenRow;
  schema_migrations: SchemaMigrationRow;
  sts_issuers: StsIssuerRow;
  trust_policies: TrustPolicyRow;
  sts_revision: StsRevisionRow;
  federations: FederationRow;
  dpop_proofs: DpopProofRow;
  key_journal: KeyJournalRow;
  secrets: SecretRow;
  secret_versions: SecretVersionRow;
  secret_keks: SecretKekRow;
  server_workloads: ServerWorkloadRow;
  credential_providers: CredentialProviderRow;
  access_policies: AccessPolicyRow;
  leases: LeaseRow;
  access_revision: AccessRevisionRow;
  posture_reports: PostureReportRow;
  posture_revision: AccessRevisionRow;
}
