// HTTP through the credential-injection proxy vs straight to the same server (issue 11,
// "Performance": keep-alive throughput ratio ≥ 0.5, added p99 latency printed).
// - direct: autocannon → the upstream test server (bench/proxy-http-child.ts upstream);
// - proxy:  the same autocannon → the proxy's HTTP handler behind a local listener
//   (proxy-http-child.ts proxy) → the same upstream; each request decided, the credential
//   injected (authorization-bearer), the answer scrubbed, the upstream connection kept alive.
// Same client, connections and duration for both, in alternating rounds; every answer must be 200.
// The proxy and the upstream run in their own processes, and the CPU each one spends per request
// is read from /proc/<pid>/stat: on a loaded machine throughput and latency say as much about the
// neighbours as about the proxy, while CPU per request (proxy beside the upstream it fronts)
// stays meaningful.
// Run: ./node_modules/.bin/node bench/proxy-http.bench.ts [ms-per-measurement]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
// autocannon ships no types; the part used here:
// @ts-expect-error -- untyped CommonJS module
import autocannonUntyped from 'autocannon';
import { BENCH_TOKEN } from './proxy-http-child.ts';
import { loadNote } from './lib.ts';
import { NO_REFERENCE, startReferenceProxy, type ReferenceProxy } from './reference-proxy.ts';

interface Result {
  requests: { average: number; total: number };
  latency: { p99: number; p50: number };
  non2xx: number;
  errors: number;
}
const autocannon = autocannonUntyped as (o: object) => Promise<Result>;

const ms = Number(process.argv[2] ?? 2000);
const CONNECTIONS = 16;
const ROUNDS = 3;
const TARGET = 0.5;
const children: ChildProcess[] = [];
const ticksPerSecond = clockTicks();

interface Round {
  readonly rate: number;
  readonly p99: number;
  /** CPU microseconds per request: the upstream's, and the proxy's (0 when not in the path). */
  readonly upstreamCpu: number;
  readonly proxyCpu: number;
  /** The load generator's (autocannon, in this process). */
  readonly clientCpu: number;
}

async function start(...args: string[]): Promise<{ port: number; pid: number }> {
  const child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'proxy-http-child.ts'), ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) return { port: Number(line), pid: child.pid! };
  throw new Error(`proxy-http-child ${args[0]} exited without a port`);
}

/** CPU time (user + system) of a process so far, in microseconds. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) / ticksPerSecond) * 1e6;
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

async function run(port: number, label: string, upstreamPid: number, proxyPid: number) {
  const u0 = cpuMicros(upstreamPid);
  const p0 = cpuMicros(proxyPid);
  const c0 = process.cpuUsage();
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/v1/items`,
    connections: CONNECTIONS,
    duration: Math.max(1, Math.round(ms / 1000)),
    headers: { authorization: 'Bearer direct' },
  });
  if (r.non2xx > 0 || r.errors > 0) {
    throw new Error(`${label}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  }
  const n = Math.max(1, r.requests.total);
  const c = process.cpuUsage(c0);
  const round: Round = {
    rate: r.requests.average,
    p99: r.latency.p99,
    upstreamCpu: (cpuMicros(upstreamPid) - u0) / n,
    proxyCpu: (cpuMicros(proxyPid) - p0) / n,
    clientCpu: (c.user + c.system) / n,
  };
  const cpu =
    `CPU/req client ${round.clientCpu.toFixed(0)} µs, upstream ${round.upstreamCpu.toFixed(0)} µs` +
    (port === upstreamPort ? '' : `, proxy ${round.proxyCpu.toFixed(0)} µs`);
  console.log(
    `${label.padEnd(48)} ${Math.round(round.rate).toLocaleString('en-US').padStart(9)} req/s  p50 ${r.latency.p50} ms  p99 ${round.p99} ms  ${cpu}`,
  );
  return round;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const line = (label: string, text: string) => console.log(`${label.padEnd(48)} ${text}`);
let upstreamPort = 0;
let reference: ReferenceProxy | undefined;

try {
  const upstream = await start('upstream');
  upstreamPort = upstream.port;
  const proxy = await start('proxy', String(upstream.port));
  // The same hop made by a C proxy that only sets the header: what any proxy costs here.
  reference = await startReferenceProxy('http', upstream.port, [
    'authorization',
    `Bearer ${BENCH_TOKEN}`,
  ]);
  console.log(loadNote('before'));
  await run(proxy.port, 'warm-up through the proxy', upstream.pid, proxy.pid);
  const direct: Round[] = [];
  const proxied: Round[] = [];
  const referenced: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    direct.push(
      await run(
        upstream.port,
        `direct (keep-alive, ${CONNECTIONS} connections)`,
        upstream.pid,
        proxy.pid,
      ),
    );
    proxied.push(
      await run(
        proxy.port,
        `through the proxy (keep-alive, ${CONNECTIONS} connections)`,
        upstream.pid,
        proxy.pid,
      ),
    );
    if (reference) {
      referenced.push(
        await run(reference.port, `through ${reference.label}`, upstream.pid, reference.pid),
      );
    }
  }
  const best = (rs: Round[]) => rs.reduce((a, b) => (b.rate > a.rate ? b : a));
  const ratio = best(proxied).rate / best(direct).rate;
  const pairs = proxied.map((p, i) => p.rate / direct[i]!.rate);
  line(
    'ratio proxy / direct (throughput, best rounds)',
    `${ratio.toFixed(3)} (target ≥ ${TARGET.toFixed(2)}: ${ratio >= TARGET ? 'ok' : 'BELOW'})`,
  );
  line(
    'reference: a C proxy in the same path / direct',
    reference
      ? `${(best(referenced).rate / best(direct).rate).toFixed(3)} (${reference.label}: sets the header, no decision, no scrub; CPU/req ${median(referenced.map((r) => r.proxyCpu)).toFixed(0)} µs)`
      : NO_REFERENCE,
  );
  line(
    'ratio per round (proxy / the direct round before)',
    `${pairs.map((r) => r.toFixed(3)).join(', ')} (median ${median(pairs).toFixed(3)})`,
  );
  const dp99 = median(direct.map((r) => r.p99));
  const pp99 = median(proxied.map((r) => r.p99));
  line(
    'added p99 latency (median of rounds)',
    `${(pp99 - dp99).toFixed(1)} ms (direct ${dp99} ms, proxy ${pp99} ms; printed, no target)`,
  );
  const proxyCpu = median(proxied.map((r) => r.proxyCpu));
  const upstreamCpu = median(proxied.map((r) => r.upstreamCpu));
  line(
    'CPU per proxied request (median of rounds)',
    `proxy ${proxyCpu.toFixed(0)} µs, upstream ${upstreamCpu.toFixed(0)} µs: proxy/upstream ${(proxyCpu / upstreamCpu).toFixed(2)} (the proxy makes two reads and two writes per request, the upstream one of each)`,
  );
  const total = (r: Round) => r.clientCpu + r.upstreamCpu + r.proxyCpu;
  const cpuRatio = median(direct.map(total)) / median(proxied.map(total));
  line(
    'CPU per request, all processes: direct / proxy',
    `${cpuRatio.toFixed(3)} (where client, proxy and upstream share the cores, throughput follows this)`,
  );
  console.log(loadNote('after'));
} finally {
  reference?.stop();
  for (const c of children) c.kill();
}
