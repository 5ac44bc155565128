// Row ↔ domain conversions of the access model (server workloads, credential providers, access
// policies) and the reference checks every writer shares.
import type {
  AccessEffect,
  AccessPolicy,
  CredentialProviderRecord,
  ServerProtocol,
  ServerWorkload,
} from '../../core/access.ts';
import { policiesPhrase } from '../../core/access.ts';
import { FailedPreconditionError, NotFoundError } from '../../core/errors.ts';
import { type Db, lockRows, type SqlContext } from './dialect.ts';
import type { AccessPolicyRow, CredentialProviderRow, ServerWorkloadRow } from './schema.ts';

export const workloadRow = (w: ServerWorkload): ServerWorkloadRow => ({
  name: w.name,
  host: w.host,
  port: w.port,
  protocol: w.protocol,
  path_prefix: w.pathPrefix,
  present: w.present,
  tls: w.tls ? 1 : 0,
  tls_ca: w.tlsCa,
  tls_decrypt: w.tlsDecrypt ? 1 : 0,
  created_at: w.createdAt,
  updated_at: w.updatedAt,
});

export const workloadOf = (r: ServerWorkloadRow): ServerWorkload => ({
  name: r.name,
  host: r.host,
  port: Number(r.port),
  protocol: r.protocol as ServerProtocol,
  pathPrefix: r.path_prefix,
  present: r.present,
  tls: Number(r.tls) === 1,
  tlsCa: r.tls_ca,
  tlsDecrypt: Number(r.tls_decrypt) === 1,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export const providerRow = (p: CredentialProviderRecord): CredentialProviderRow => ({
  name: p.name,
  type: p.type,
  config: JSON.stringify(p.config),
  created_at: p.createdAt,
  updated_at: p.updatedAt,
});

export const providerOf = (r: CredentialProviderRow): CredentialProviderRecord => ({
  name: r.name,
  type: r.type,
  config: JSON.parse(r.config) as Record<string, unknown>,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export const policyRow = (p: AccessPolicy): AccessPolicyRow => ({
  name: p.name,
  client: p.client,
  server: p.server,
  credential_provider: p.credentialProvider,
  condition: p.condition,
  effect: p.effect,
  created_at: p.createdAt,
  updated_at: p.updatedAt,
});

export const policyOf = (r: AccessPolicyRow): AccessPolicy => ({
  name: r.name,
  client: r.client,
  server: r.server,
  credentialProvider: r.credential_provider,
  condition: r.condition,
  effect: r.effect as AccessEffect,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/** Names for messages: at most 64 characters each (names are bounded, but keep errors short). */
export const q = (name: string): string => `"${name.slice(0, 64)}"`;

/** "policy "a"" / "policies "a", "b", …" for at most 10 names (11 fetched to know there are more). */
/**
 * Locks the server workload and provider a policy names (FOR UPDATE on PostgreSQL, so a
 * concurrent delete waits for this transaction and then sees the policy), or refuses naming the
 * missing one. A deny policy names no provider.
 */
export async function checkPolicyRefs(ctx: SqlContext, tx: Db, p: AccessPolicy): Promise<void> {
  const w = await lockRows(
    ctx,
    tx.selectFrom('server_workloads').select('name').where('name', '=', p.server),
  ).executeTakeFirst();
  if (!w)
    throw new NotFoundError(
      `access policy ${q(p.name)}: server workload ${q(p.server)} does not exist`,
    );
  if (p.credentialProvider === '') return;
  const c = await lockRows(
    ctx,
    tx.selectFrom('credential_providers').select('name').where('name', '=', p.credentialProvider),
  ).executeTakeFirst();
  if (!c)
    throw new NotFoundError(
      `access policy ${q(p.name)}: credential provider ${q(p.credentialProvider)} does not exist`,
    );
}

/** Refuses to delete `name` (of `what`) while policies refer to it through `column`. */
export async function refuseIfReferenced(
  tx: Db,
  column: 'server' | 'credential_provider',
  what: string,
  name: string,
): Promise<void> {
  const users = await tx
    .selectFrom('access_policies')
    .select('name')
    .where(column, '=', name)
    .orderBy('name')
    .limit(11)
    .execute();
  if (users.length > 0) {
    throw new FailedPreconditionError(
      `${what} ${q(name)} is used by ${policiesPhrase(users.map((u) => u.name))}: delete or change them first`,
    );
  }
}
