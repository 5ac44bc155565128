// The PostgreSQL credential-injection proxy (issue 11, "Performance"): `pgbench -S` (select-only)
// through the proxy vs direct to the same PostgreSQL, same client and concurrency, alternating
// rounds, best of each kept; TPS ratio target ≥ 0.8. Then new connections (`pgbench -S -C`,
// one connection per transaction) to a throwaway cluster requiring scram-sha-256: the proxy
// process's CPU per connection (startup, credential, upstream SCRAM login, relay set-up; the
// decision and credential come from a stand-in answering at once until proxy-core's listeners
// are measured here) and the connection rate against direct connections.
// Run: ./node_modules/.bin/node bench/proxy-postgres.bench.ts [ms-per-measurement]
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  type PostgresServer,
  psql,
  sharedPostgres,
  startPasswordPostgres,
} from '../src/plugins/credential-providers/testing/password-postgres.ts';
import { compare, loadNote, ratio } from './lib.ts';

const run = promisify(execFile);
const ms = Number(process.argv[2] ?? 2000);
const seconds = Math.max(2, Math.round(ms / 1000));
const BIN = '/usr/lib/postgresql/15/bin';
const DB = 'tessera_bench_proxy_pg';
const CLIENTS = 8;

const created = await psql(sharedPostgres, 'postgres', '', 'postgres', `create database ${DB}`);
if (!created.ok && !created.out.includes('already exists')) throw new Error(created.out);
await run(`${BIN}/pgbench`, ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-U', 'postgres', DB]);
const trustProxy = await startProxy(sharedPostgres.port, 'postgres', '');
const userSpaceProxy = await startProxy(sharedPostgres.port, 'postgres', '', 'off');
let scram: PostgresServer | undefined;
let scramProxy: Awaited<ReturnType<typeof startProxy>> | undefined;
try {
  console.log(loadNote('start'));
  console.log(`${'pgbench -S'.padEnd(48)} ${CLIENTS} clients, 2 threads, ${seconds} s a run`);
  console.log(`${'proxy kernel relay'.padEnd(48)} ${trustProxy.kernelRelay}`);
  const cpuPerTx = new Map<number, number>();
  const tps = (port: number, name: string, pid?: number) => async () => {
    const c0 = pid === undefined ? 0 : cpuUs(pid);
    const r = await pgbench(port, 'postgres', '', DB, []);
    if (pid !== undefined) {
      const us = (cpuUs(pid) - c0) / r.transactions;
      cpuPerTx.set(pid, Math.min(cpuPerTx.get(pid) ?? Infinity, us));
    }
    console.log(`${name.padEnd(48)} ${Math.round(r.tps).toLocaleString('en-US').padStart(12)} tps`);
    return r.tps;
  };
  const t = await compare(tps(sharedPostgres.port, 'direct: pgbench -S'), [
    tps(trustProxy.port, 'proxy: pgbench -S', trustProxy.proc.pid),
    tps(userSpaceProxy.port, 'proxy, kernel_relay off: pgbench -S', userSpaceProxy.proc.pid),
  ]);
  ratio('pgbench -S TPS, proxy / direct', t[0]!, t.baseline, 0.8);
  ratio('  the same with proxy.kernel_relay off', t[1]!, t.baseline, 0.8);
  const perTx = (pid: number | undefined) => (cpuPerTx.get(pid ?? -1) ?? NaN).toFixed(1);
  console.log(
    `${'proxy CPU per transaction'.padEnd(48)} ${perTx(trustProxy.proc.pid)} µs (kernel relay), ${perTx(userSpaceProxy.proc.pid)} µs (user space)`,
  );

  // New connections, each logging in upstream with SCRAM-SHA-256.
  scram = await startPasswordPostgres();
  const pw = randomBytes(12).toString('base64url');
  const setup = await psql(
    scram,
    'postgres',
    scram.superPassword,
    'postgres',
    `create role bench login password '${pw}'`,
  );
  if (!setup.ok) throw new Error(setup.out);
  await run(
    `${BIN}/pgbench`,
    [
      '-i',
      '-q',
      '-s',
      '1',
      '-h',
      '127.0.0.1',
      '-p',
      String(scram.port),
      '-U',
      'postgres',
      'postgres',
    ],
    {
      env: { ...process.env, PGPASSWORD: scram.superPassword },
    },
  );
  await psql(
    scram,
    'postgres',
    scram.superPassword,
    'postgres',
    'grant select on all tables in schema public to bench',
  );
  scramProxy = await startProxy(scram.port, 'bench', pw);
  let cpuPerConn = Infinity;
  const s = scram;
  const sp = scramProxy;
  const conns = (port: number, password: string, name: string, pid?: number) => async () => {
    const c0 = pid === undefined ? 0 : cpuUs(pid);
    const r = await pgbench(port, 'bench', password, 'postgres', ['-C']);
    if (pid !== undefined) cpuPerConn = Math.min(cpuPerConn, (cpuUs(pid) - c0) / r.transactions);
    console.log(
      `${name.padEnd(48)} ${Math.round(r.tps).toLocaleString('en-US').padStart(12)} connections/s`,
    );
    return r.tps;
  };
  const c = await compare(conns(s.port, pw, 'direct: pgbench -S -C (scram)'), [
    conns(sp.port, 'unused', 'proxy: pgbench -S -C (scram upstream)', sp.proc.pid),
  ]);
  ratio('new connections/s, proxy / direct', c[0]!, c.baseline);
  console.log(
    `${'proxy CPU per new connection'.padEnd(48)} ${(cpuPerConn / 1000).toFixed(2)} ms (startup, credential from a stand-in, upstream SCRAM login, relay)`,
  );
  console.log(loadNote('end'));
} finally {
  const asked = await trustProxy.stop();
  await userSpaceProxy.stop();
  await scramProxy?.stop();
  await scram?.stop();
  await psql(sharedPostgres, 'postgres', '', 'postgres', `drop database if exists ${DB}`);
  console.log(`${'credentials asked (trust proxy)'.padEnd(48)} ${asked}: one per connection`);
}

async function pgbench(port: number, user: string, password: string, db: string, extra: string[]) {
  const { stdout } = await run(
    `${BIN}/pgbench`,
    [
      '-S',
      '-n',
      '-c',
      String(CLIENTS),
      '-j',
      '2',
      '-T',
      String(seconds),
      ...extra,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      user,
      db,
    ],
    { env: { ...process.env, PGPASSWORD: password }, timeout: (seconds + 60) * 1000 },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const transactions = Number(/actually processed: (\d+)/.exec(stdout)?.[1]);
  if (!(tps > 0) || !(transactions > 0)) throw new Error(`pgbench printed no rate:\n${stdout}`);
  return { tps, transactions };
}

/** utime + stime of a process, in µs (clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

async function startProxy(
  upstreamPort: number,
  user: string,
  password: string,
  kernelRelay: 'auto' | 'off' = 'auto',
) {
  const proc: ChildProcess = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'proxy-postgres-proxy.ts'), String(upstreamPort), user],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        PROXY_BENCH_PASSWORD: password,
        PROXY_BENCH_KERNEL_RELAY: kernelRelay,
      },
    },
  );
  let out = '';
  proc.stdout?.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the proxy did not start')), 60_000);
    proc.stdout?.on('data', (c: string) => {
      out += c;
      if (out.includes('ready\n')) {
        clearTimeout(t);
        resolve();
      }
    });
    proc.once('exit', (code) => reject(new Error(`the proxy exited (${code})`)));
  });
  return {
    proc,
    port: Number(/port (\d+)/.exec(out)?.[1]),
    kernelRelay: /kernel relay (.*)/.exec(out)?.[1] ?? '?',
    stop: () =>
      new Promise<number>((resolve) => {
        const done = () => resolve(Number(/connections (\d+)/.exec(out)?.[1] ?? -1));
        if (proc.exitCode !== null) return done();
        proc.once('exit', done);
        proc.kill('SIGTERM');
      }),
  };
}
