// An access document imported in the caller's transaction: every object created or replaced by
// name (replacing keeps createdAt), server workloads and providers first, then policies, whose
// references are checked against the database once everything else is written — so a policy may
// name a server workload of the same document, and one unknown name fails the whole import.
import { InvalidArgumentError, NotFoundError } from '../../core/errors.ts';
import type { AccessDocumentRecords, AccessImportResult } from '../types.ts';
import { chunks, type Db, lockRows, type SqlContext } from './dialect.ts';
import { policyRow, providerRow, q, workloadRow } from './access-rows.ts';
import type { AccessPolicyRow, CredentialProviderRow, ServerWorkloadRow } from './schema.ts';

type Table = 'server_workloads' | 'credential_providers' | 'access_policies';
type Row = ServerWorkloadRow | CredentialProviderRow | AccessPolicyRow;

/** Names of `names` present in `table`, locked (FOR UPDATE on PostgreSQL). */
async function existing(
  ctx: SqlContext,
  tx: Db,
  table: Table,
  names: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  // Locked in name order, so two imports sharing names wait for each other instead of deadlocking.
  const sorted = [...names].sort();
  for (const part of chunks(sorted, 1, ctx.dialect.maxParams)) {
    const rows = await lockRows(
      ctx,
      tx
        .selectFrom(table as Table)
        .select('name')
        .where('name', 'in', part)
        .orderBy('name'),
    ).execute();
    for (const r of rows) found.add(r.name);
  }
  return found;
}

/** Inserts the new rows, replaces the existing ones (keeping created_at); returns the replaced. */
async function upsert(
  ctx: SqlContext,
  tx: Db,
  table: Table,
  rows: readonly Row[],
): Promise<string[]> {
  const seen = new Set<string>();
  for (const r of rows) {
    if (seen.has(r.name)) throw new InvalidArgumentError(`${table}: ${q(r.name)} appears twice`);
    seen.add(r.name);
  }
  const old = await existing(
    ctx,
    tx,
    table,
    rows.map((r) => r.name),
  );
  const fresh = rows.filter((r) => !old.has(r.name));
  const columns = Object.keys(rows[0] ?? {}).length || 1;
  for (const part of chunks(fresh, columns, ctx.dialect.maxParams)) {
    await tx
      .insertInto(table)
      .values(part as never)
      .execute();
  }
  const replaced = rows.filter((r) => old.has(r.name));
  for (const r of replaced) {
    const { name, created_at: _created, ...fields } = r;
    await tx
      .updateTable(table)
      .set(fields as never)
      .where('name', '=', name)
      .execute();
  }
  return replaced.map((r) => r.name);
}

/** Every server workload and provider the policies name exists now, or NotFoundError naming it. */
async function checkReferences(
  ctx: SqlContext,
  tx: Db,
  policies: readonly AccessPolicyRow[],
): Promise<void> {
  const servers = await existing(ctx, tx, 'server_workloads', [
    ...new Set(policies.map((p) => p.server)),
  ]);
  const providerNames = [
    ...new Set(policies.map((p) => p.credential_provider).filter((n) => n !== '')),
  ];
  const providers = await existing(ctx, tx, 'credential_providers', providerNames);
  for (const p of policies) {
    if (!servers.has(p.server))
      throw new NotFoundError(
        `access policy ${q(p.name)}: server workload ${q(p.server)} does not exist`,
      );
    if (p.credential_provider !== '' && !providers.has(p.credential_provider))
      throw new NotFoundError(
        `access policy ${q(p.name)}: credential provider ${q(p.credential_provider)} does not exist`,
      );
  }
}

export async function importAccessDocument(
  ctx: SqlContext,
  tx: Db,
  doc: AccessDocumentRecords,
): Promise<AccessImportResult> {
  const serverWorkloads = await upsert(
    ctx,
    tx,
    'server_workloads',
    doc.serverWorkloads.map(workloadRow),
  );
  const credentialProviders = await upsert(
    ctx,
    tx,
    'credential_providers',
    doc.credentialProviders.map(providerRow),
  );
  const policies = doc.accessPolicies.map(policyRow);
  const accessPolicies = await upsert(ctx, tx, 'access_policies', policies);
  await checkReferences(ctx, tx, policies);
  return { replaced: { serverWorkloads, credentialProviders, accessPolicies } };
}
