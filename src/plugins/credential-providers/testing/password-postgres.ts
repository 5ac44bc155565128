// PostgreSQL for credential tests. The shared server on 127.0.0.1:5432 trusts every local
// connection, so it cannot show that a password is checked or that VALID UNTIL ends logins. For
// those, startPasswordPostgres runs a throwaway cluster of the same real binaries (initdb,
// pg_ctl) with scram-sha-256 on 127.0.0.1 and a free port, as the postgres OS user when the
// tests run as root (initdb refuses root). Options choose the password method (md5 also lets
// roles whose password is stored as SCRAM log in with SCRAM; `password` is cleartext) and TLS
// with a certificate of the test's (then TCP clients must use TLS: hostssl only).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface PostgresServer {
  readonly port: number;
  /** Superuser `postgres`; "" when the server trusts local connections. */
  readonly superPassword: string;
  readonly passwordAuth: boolean;
  url(user: string, password: string, database: string): string;
  stop(): Promise<void>;
}

export const sharedPostgres: PostgresServer = {
  port: 5432,
  superPassword: '',
  passwordAuth: false,
  url: (user, password, database) =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:5432/${database}`,
  stop: async () => {},
};

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface PasswordPostgresOptions {
  /** pg_hba method for every connection. Default scram-sha-256. */
  readonly auth?: 'scram-sha-256' | 'md5' | 'password';
  /** Serve TLS with this certificate and key (PEM files); TCP connections without TLS are rejected. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /**
   * pg_hba lines for TCP connections instead of the default (`auth` for all; with `tls`, hostssl
   * only): e.g. one user md5 without TLS, another scram over hostssl only.
   */
  readonly hba?: readonly string[];
}

export async function startPasswordPostgres(
  options: PasswordPostgresOptions = {},
): Promise<PostgresServer> {
  const auth = options.auth ?? 'scram-sha-256';
  const dir = await mkdtemp(path.join(tmpdir(), 'tessera-pg-'));
  const superPassword = randomBytes(18).toString('base64url');
  const pwFile = path.join(dir, 'pw');
  await writeFile(pwFile, superPassword + '\n', { mode: 0o600 });
  const owned = [dir, pwFile];
  if (options.tls) {
    await copyFile(options.tls.certFile, path.join(dir, 'server.crt'));
    await copyFile(options.tls.keyFile, path.join(dir, 'server.key'));
    await chmod(path.join(dir, 'server.key'), 0o600);
    owned.push(...['server.crt', 'server.key'].map((f) => path.join(dir, f)));
  }
  if (options.tls || options.hba) {
    const tcp = options.hba ?? [
      `hostssl all all 127.0.0.1/32 ${auth}`,
      'hostnossl all all 0.0.0.0/0 reject',
    ];
    await writeFile(path.join(dir, 'hba.conf'), [`local all all ${auth}`, ...tcp, ''].join('\n'));
    owned.push(path.join(dir, 'hba.conf'));
  }
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    for (const p of owned) await chown(p, Number(stdout), Number(gid));
  }
  const as = (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
  const data = path.join(dir, 'data');
  await as(`${BIN}/initdb`, [
    '-D',
    data,
    '-U',
    'postgres',
    `--pwfile=${pwFile}`,
    '-A',
    auth,
    '--no-sync',
  ]);
  const port = await freePort();
  let opts = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off`;
  if (options.tls) {
    opts += ` -c ssl=on -c ssl_cert_file=${dir}/server.crt -c ssl_key_file=${dir}/server.key`;
  }
  if (options.tls || options.hba) opts += ` -c hba_file=${dir}/hba.conf`;
  await as(`${BIN}/pg_ctl`, [
    '-D',
    data,
    '-l',
    path.join(dir, 'log'),
    '-w',
    '-t',
    '60',
    '-o',
    opts,
    'start',
  ]);
  return {
    port,
    superPassword,
    passwordAuth: true,
    url: (user, password, database) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    async stop() {
      await as(`${BIN}/pg_ctl`, ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** psql as `user`, the password in the child's environment (never on its command line). */
export async function psql(
  server: PostgresServer,
  user: string,
  password: string,
  database: string,
  sql: string,
): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout } = await run(
      'psql',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(server.port),
        '-U',
        user,
        '-d',
        database,
        '-w',
        '-X',
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        sql,
      ],
      { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 },
    );
    return { ok: true, out: stdout.trim() };
  } catch (e) {
    return { ok: false, out: String((e as { stderr?: string }).stderr ?? e).trim() };
  }
}
