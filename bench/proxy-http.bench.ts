// HTTP through the credential-injection proxy vs straight to the same server (issue 11,
// "Performance": keep-alive throughput ratio ≥ 0.5, added p99 latency printed).
// - direct: autocannon → the upstream test server (bench/proxy-http-child.ts upstream);
// - proxy:  the same autocannon → the proxy's HTTP handler behind a local listener
//   (proxy-http-child.ts proxy) → the same upstream; each request decided, the credential
//   injected (authorization-bearer), the answer scrubbed, the upstream connection kept alive.
// Same client, connections and duration for both, in alternating rounds (best of each kept);
// every answer must be 200. The proxy and the upstream run in their own processes.
// Run: ./node_modules/.bin/node bench/proxy-http.bench.ts [ms-per-measurement]
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
// autocannon ships no types; the part used here:
// @ts-expect-error -- untyped CommonJS module
import autocannonUntyped from 'autocannon';
import { loadNote } from './lib.ts';

interface Result {
  requests: { average: number };
  latency: { p99: number; p50: number };
  non2xx: number;
  errors: number;
}
const autocannon = autocannonUntyped as (o: object) => Promise<Result>;

const ms = Number(process.argv[2] ?? 2000);
const CONNECTIONS = 16;
const TARGET = 0.5;
const children: ChildProcess[] = [];

async function start(...args: string[]): Promise<number> {
  const child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'proxy-http-child.ts'), ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) return Number(line);
  throw new Error(`proxy-http-child ${args[0]} exited without a port`);
}

async function run(port: number, label: string): Promise<Result> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/v1/items`,
    connections: CONNECTIONS,
    duration: Math.max(1, Math.round(ms / 1000)),
    headers: { authorization: 'Bearer direct' },
  });
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`${label}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  console.log(
    `${label.padEnd(48)} ${Math.round(r.requests.average).toLocaleString('en-US').padStart(12)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms`,
  );
  return r;
}

try {
  const upstream = await start('upstream');
  const proxy = await start('proxy', String(upstream));
  console.log(loadNote('before'));
  await run(proxy, 'warm-up through the proxy');
  let direct: Result | undefined;
  let proxied: Result | undefined;
  for (let round = 0; round < 3; round++) {
    const d = await run(upstream, 'direct (keep-alive, 16 connections)');
    const p = await run(proxy, 'through the proxy (keep-alive, 16 connections)');
    if (!direct || d.requests.average > direct.requests.average) direct = d;
    if (!proxied || p.requests.average > proxied.requests.average) proxied = p;
  }
  const ratio = proxied!.requests.average / direct!.requests.average;
  console.log(
    `${'ratio proxy / direct (throughput)'.padEnd(48)} ${ratio.toFixed(3)} (target ≥ ${TARGET.toFixed(2)}: ${ratio >= TARGET ? 'ok' : 'BELOW'})`,
  );
  console.log(
    `${'added p99 latency (best rounds)'.padEnd(48)} ${(proxied!.latency.p99 - direct!.latency.p99).toFixed(1)} ms (direct ${direct!.latency.p99} ms, proxy ${proxied!.latency.p99} ms)`,
  );
  console.log(loadNote('after'));
} finally {
  for (const c of children) c.kill();
}
