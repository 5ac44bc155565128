// postgres-dynamic: as Vault's database secrets engine. Each release creates a login role of its
// own (random name and password, VALID UNTIL the lease's expiry, grants from a template) over an
// admin connection whose password is in the secret store; ending the lease drops the role. The
// lease is recorded BEFORE the role exists, so a crash in between leaves a record to clean up,
// and a role is only ever dropped when a lease record of this provider names it and the name has
// the shape this provider generates.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { FailedPreconditionError } from '../../../core/errors.ts';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { secretName, ttlMs, ttlString } from '../shared/schema.ts';
import { readSecretText } from '../shared/secret-text.ts';
import { createRole, dropRole, pgError, retryingConflicts } from './roles.ts';
import { scramVerifier } from './scram.ts';
import { ROLE_PREFIX_PATTERN, isGeneratedRole, unknownPlaceholders } from './sql-text.ts';

export const POSTGRES_DYNAMIC_TYPE = 'postgres-dynamic';

const schema = z.strictObject({
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z.string().min(1).max(63),
  admin_user: z.string().min(1).max(63),
  admin_password: secretName,
  /** disable: plain TCP; require: TLS, server not verified; verify-full: TLS, verified (default). */
  sslmode: z.enum(['disable', 'require', 'verify-full']).default('verify-full'),
  role_prefix: z
    .string()
    .regex(
      ROLE_PREFIX_PATTERN,
      'must be lowercase letters, digits and "_" (at most 30), not starting with a digit',
    )
    .default('tessera_'),
  grants: z
    .array(
      z
        .string()
        .min(1)
        .max(4096)
        .superRefine((s, ctx) => {
          for (const p of unknownPlaceholders(s)) {
            ctx.addIssue({
              code: 'custom',
              message: `unknown placeholder {{${p}}} (known: {{role}}, {{database}})`,
            });
          }
        }),
    )
    .min(1)
    .max(32),
  ttl: ttlString('1h', 1_000, 7 * 24 * 3_600_000),
  connect_timeout_ms: z.number().int().min(100).max(60_000).default(10_000),
});

type Config = z.output<typeof schema>;

function sslOption(c: Config): pg.ClientConfig['ssl'] {
  if (c.sslmode === 'disable') return false;
  if (c.sslmode === 'require') return { rejectUnauthorized: false };
  return { rejectUnauthorized: true, servername: c.host };
}

export const postgresDynamicPlugin: CredentialProviderPlugin<typeof schema> = {
  type: POSTGRES_DYNAMIC_TYPE,
  schema,
  secretsOf: (c) => [c.admin_password],
  create(record, config, deps) {
    const what = `credential provider "${record.name}"`;
    const ttl = ttlMs(config.ttl);
    // No I/O here: the pool connects on first use. The admin password is read from the secret
    // store before every checkout (a rotated password is picked up by new connections), so a
    // missing secret fails before any connection is opened.
    let adminPassword = '';
    const pool = new pg.Pool({
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.admin_user,
      password: () => adminPassword,
      ssl: sslOption(config),
      max: 2,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: config.connect_timeout_ms,
      application_name: 'tessera-postgres-dynamic',
    });
    pool.on('error', () => {
      // An idle connection died; the next checkout makes a new one.
    });
    const withClient = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
      adminPassword = await readSecretText(deps.secrets, record.name, config.admin_password);
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (e) {
        throw pgError(`${what}: connect to ${config.host}:${config.port}`, e);
      }
      try {
        return await fn(client);
      } finally {
        client.release();
      }
    };
    // Role DDL of one provider runs one at a time (concurrent CREATE/DROP ROLE touching the
    // admin's memberships collide in PostgreSQL's catalogs); collisions with other providers or
    // servers are retried.
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(fn: () => Promise<T>): Promise<T> => {
      const run = queue.then(() => retryingConflicts(fn));
      queue = run.catch(() => {});
      return run;
    };
    const drop = (role: string) => serial(() => withClient((c) => dropRole(c, role, what)));
    return {
      type: POSTGRES_DYNAMIC_TYPE,
      name: record.name,
      async release(req) {
        const now = deps.now();
        const id = randomUUID();
        const role = `${config.role_prefix}${randomBytes(10).toString('hex')}`;
        const password = randomBytes(32).toString('base64url');
        const verifier = scramVerifier(password);
        const expiresAt = now + ttl;
        await deps.leases.record({
          id,
          provider: record.name,
          server: req.server.name,
          client: req.client.spiffeId,
          policy: req.policy,
          agent: req.agent,
          data: { role, database: config.database },
          expiresAt,
          createdAt: now,
        });
        await serial(() =>
          withClient((c) =>
            createRole(
              c,
              {
                role,
                verifier,
                validUntil: new Date(expiresAt),
                adminUser: config.admin_user,
                database: config.database,
                grants: config.grants,
              },
              what,
            ),
          ),
        );
        if (!(await deps.leases.activate(id))) {
          await drop(role);
          throw new FailedPreconditionError(
            `${what}: lease ${id} was revoked while it was created`,
          );
        }
        return {
          value: { kind: 'password', username: role, password },
          expiresAt,
          leaseId: id,
        };
      },
      async endLease(lease) {
        const role = lease.data.role ?? '';
        if (lease.provider !== record.name || !isGeneratedRole(role, config.role_prefix)) {
          throw new FailedPreconditionError(
            `${what}: lease ${lease.id} does not name a role this provider created`,
          );
        }
        await drop(role);
      },
      async close() {
        await pool.end();
      },
    };
  },
};
