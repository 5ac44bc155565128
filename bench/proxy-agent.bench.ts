// The credential-injection proxy as users run it (issue 11, "Performance"): a real server and
// agent, a local listener for a PostgreSQL server workload whose password only Tessera knows
// (a throwaway cluster requiring SCRAM-SHA-256; the credential from a static secret), `pgbench`
// with no password through the listener against `pgbench` with the password straight to the
// cluster, in alternating rounds:
// - `pgbench -S` with pgbench's defaults (1 client) and with 8 clients: TPS ratio (target ≥ 0.8);
// - `pgbench -S -C` (a new connection per transaction): the agent's CPU per new connection — the
//   TCP peer attested, the access decision and the credential from the agent's cache, the
//   upstream SCRAM login, the splice — and the connection rate against direct.
// The agent runs with the kernel relay when it may (root); its log says which, and per session
// whether the client's own socket sends straight to PostgreSQL. Beside each TPS ratio, HAProxy
// (reference-proxy.ts) relaying the same pgbench to the same cluster: what any hop costs here.
// Run: ./node_modules/.bin/node bench/proxy-agent.bench.ts [ms-per-measurement]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import {
  psql,
  startPasswordPostgres,
} from '../src/plugins/credential-providers/testing/password-postgres.ts';
import { startProxyStack } from '../test/helpers/proxy-stack.ts';
import { compare, loadNote, ratio } from './lib.ts';
import { NO_REFERENCE, startReferenceProxy, type ReferenceProxy } from './reference-proxy.ts';

const run = promisify(execFile);
const ms = Number(process.argv[2] ?? 2000);
const seconds = Math.max(2, Math.round(ms / 1000));
const BIN = '/usr/lib/postgresql/15/bin';
const CLIENT = 'spiffe://example.org/bench/pgbench';
const USER = 'bench';
const password = randomBytes(18).toString('base64url');

const pg = await startPasswordPostgres();
let stack: Awaited<ReturnType<typeof startProxyStack>> | undefined;
let reference: ReferenceProxy | undefined;
try {
  const made = await psql(
    pg,
    'postgres',
    pg.superPassword,
    'postgres',
    `create role ${USER} login superuser password '${password}'`,
  );
  if (!made.ok) throw new Error(made.out);
  await run(
    `${BIN}/pgbench`,
    ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(pg.port), '-U', USER, 'postgres'],
    {
      env: { ...process.env, PGPASSWORD: password },
    },
  );
  stack = await startProxyStack({
    name: 'bench',
    clients: [CLIENT],
    secrets: { 'bench-login': JSON.stringify({ username: USER, password }) },
    access: {
      server_workloads: [
        {
          name: 'db',
          host: '127.0.0.1',
          port: pg.port,
          protocol: 'postgres',
          present: 'postgres-password',
        },
      ],
      credential_providers: [
        {
          name: 'db-login',
          type: 'static-secret',
          config: { secret: 'bench-login', format: 'username-password' },
        },
      ],
      access_policies: [
        { name: 'bench-db', client: CLIENT, server: 'db', credential_provider: 'db-login' },
      ],
    },
    listeners: ['db'],
  });
  const listener = stack.port('db');
  // The agent learns the server workload shortly after it starts: wait for the first session.
  for (let i = 0; ; i++) {
    try {
      await pgbench(listener, '', ['-t', '1', '-c', '1']);
      break;
    } catch (e) {
      if (i >= 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const relay =
    /kernel relay (on|off)[^"\n]*/.exec(stack.agent.output())?.[0] ?? 'kernel relay: not logged';
  console.log(loadNote('start'));
  console.log(`${'agent'.padEnd(48)} ${relay}`);
  const agentPid = stack.agent.proc.pid ?? 0;
  // The same hop made by a C proxy relaying bytes (pgbench gives the password itself).
  reference = await startReferenceProxy('tcp', pg.port);

  for (const clients of [1, 8]) {
    const args = ['-T', String(seconds), '-c', String(clients), '-j', String(Math.min(clients, 2))];
    const label = `pgbench -S, ${clients} client${clients > 1 ? 's' : ''}`;
    let cpu = Infinity;
    const tps = (port: number, pw: string, name: string) => async () => {
      const c0 = cpuUs(agentPid);
      const r = await pgbench(port, pw, args);
      if (port === listener) cpu = Math.min(cpu, (cpuUs(agentPid) - c0) / r.transactions);
      console.log(
        `${`${name}: ${label}`.padEnd(48)} ${Math.round(r.tps).toLocaleString('en-US').padStart(12)} tps`,
      );
      return r.tps;
    };
    const subjects = [tps(listener, '', 'agent')];
    if (reference) subjects.push(tps(reference.port, password, 'HAProxy'));
    const t = await compare(tps(pg.port, password, 'direct'), subjects);
    ratio(`${label}: TPS through the agent / direct`, t[0]!, t.baseline, 0.8);
    console.log(`${'  agent CPU per transaction'.padEnd(48)} ${cpu.toFixed(1)} µs`);
    console.log(
      `${'  reference: a C proxy in the same path / direct'.padEnd(48)} ${reference ? `${(t[1]! / t.baseline).toFixed(3)} (${reference.label}: relays bytes, no login)` : NO_REFERENCE}`,
    );
  }

  const sessionLine = (label: string) => {
    const sessions = stack!.agent
      .output()
      .split('\n')
      .filter((l) => l.includes('"postgres session relayed"'));
    const straight = sessions.filter((l) => l.includes('"clientSends":true')).length;
    const spliced = sessions.filter((l) => l.includes('"kernelRelay":true')).length;
    console.log(
      `${label.padEnd(48)} ${sessions.length}: ${spliced} spliced, ${straight} with the client's own socket sending straight to PostgreSQL`,
    );
  };
  sessionLine('sessions so far');

  let perConn = Infinity;
  const conns = (port: number, pw: string, name: string) => async () => {
    const c0 = cpuUs(agentPid);
    const r = await pgbench(port, pw, ['-C', '-T', String(seconds), '-c', '1']);
    if (port === listener) perConn = Math.min(perConn, (cpuUs(agentPid) - c0) / r.transactions);
    console.log(
      `${`${name}: pgbench -S -C`.padEnd(48)} ${Math.round(r.tps).toLocaleString('en-US').padStart(12)} connections/s`,
    );
    return r.tps;
  };
  const c = await compare(conns(pg.port, password, 'direct'), [conns(listener, '', 'agent')]);
  ratio('new connections/s through the agent / direct', c[0]!, c.baseline);
  console.log(
    `${'agent CPU per new connection'.padEnd(48)} ${(perConn / 1000).toFixed(2)} ms (attestation, decision + credential from cache, upstream SCRAM, splice)`,
  );
  sessionLine('sessions in all');
  console.log(loadNote('end'));
} finally {
  reference?.stop();
  await stack?.stop();
  await pg.stop();
}

async function pgbench(port: number, pw: string, extra: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSFILE: '/dev/null' };
  if (pw) env['PGPASSWORD'] = pw;
  else delete env['PGPASSWORD'];
  const { stdout } = await run(
    `${BIN}/pgbench`,
    ['-S', '-n', ...extra, '-h', '127.0.0.1', '-p', String(port), '-U', USER, 'postgres'],
    { env, timeout: (seconds + 60) * 1000 },
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
