// The two things postgres-dynamic does to PostgreSQL: create a login role with its grants in one
// transaction, and drop a role (sessions ended first) — idempotently, so ending a lease twice, or
// one whose role was never created, is harmless.
import type pg from 'pg';
import { FailedPreconditionError, UnavailableError } from '../../../core/errors.ts';
import { quoteIdent, quoteLiteral, renderGrant } from './sql-text.ts';

export interface RoleSpec {
  readonly role: string;
  /** The SCRAM verifier, never the password. */
  readonly verifier: string;
  readonly validUntil: Date;
  readonly adminUser: string;
  readonly database: string;
  readonly grants: readonly string[];
}

/** Maps a pg/driver error to a Tessera error; PostgreSQL messages hold no password here. */
export function pgError(where: string, e: unknown): Error {
  const err = e as { code?: string; message?: string };
  const code = typeof err.code === 'string' ? err.code : '';
  // SQLSTATE: 5 characters; class 08 (connection), 57P (operator intervention), 53 (resources).
  if (/^[0-9A-Z]{5}$/.test(code) && !/^(08|57P|53)/.test(code)) {
    return new FailedPreconditionError(`${where}: ${err.message ?? 'failed'} (SQLSTATE ${code})`, {
      cause: e,
    });
  }
  return new UnavailableError(`${where}: ${code || err.message || 'database unavailable'}`, {
    cause: e,
  });
}

/**
 * Runs `fn` again (up to 3 tries) when PostgreSQL refused it for a concurrent change of the same
 * catalog rows — role DDL from other connections ("tuple concurrently updated"), a
 * serialization failure or a deadlock. Each try is its own transaction.
 */
export async function retryingConflicts<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { cause?: { code?: string } }).cause?.code;
      if (attempt >= 3 || !(code === 'XX000' || code === '40001' || code === '40P01')) throw e;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.floor(Math.random() * 30)));
    }
  }
}

export async function createRole(client: pg.ClientBase, spec: RoleSpec, what: string) {
  const role = quoteIdent(spec.role);
  await client.query('begin');
  try {
    try {
      await client.query(
        `create role ${role} login password ${quoteLiteral(spec.verifier)} ` +
          `valid until ${quoteLiteral(spec.validUntil.toISOString())} ` +
          // The admin becomes a member: PostgreSQL lets it end the role's sessions and
          // REASSIGN/DROP OWNED BY it later.
          `role ${quoteIdent(spec.adminUser)}`,
      );
    } catch (e) {
      throw pgError(`${what}: create role`, e);
    }
    for (const [i, stmt] of spec.grants.entries()) {
      try {
        await client.query(renderGrant(stmt, { role: spec.role, database: spec.database }));
      } catch (e) {
        throw pgError(`${what}: grants[${i}]`, e);
      }
    }
    await client.query('commit');
  } catch (e) {
    await client.query('rollback').catch(() => {});
    throw e;
  }
}

/** Drops `role` if it exists: no new logins, sessions ended, owned objects handed to the admin. */
export async function dropRole(client: pg.ClientBase, role: string, what: string) {
  const r = quoteIdent(role);
  try {
    const exists = await client.query('select 1 from pg_roles where rolname = $1', [role]);
    if (exists.rowCount === 0) return;
    await client.query(`alter role ${r} nologin`);
    await client.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()',
      [role],
    );
    await client.query('begin');
    try {
      await client.query(`reassign owned by ${r} to current_user`);
      await client.query(`drop owned by ${r}`);
      await client.query(`drop role if exists ${r}`);
      await client.query('commit');
    } catch (e) {
      await client.query('rollback').catch(() => {});
      throw e;
    }
  } catch (e) {
    throw pgError(`${what}: drop role ${role}`, e);
  }
}
