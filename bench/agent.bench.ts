// Agent benchmarks over the real Workload API socket (issue: agent). A server and an agent run
// as their own processes; this process is the workload (grpc-js clients built from the .proto).
// - FetchJWTSVID cache miss (agent → server mint) / raw crypto.sign P-256 (target ≥ 0.4), and cache hit
// - FetchX509SVID first-message latency p50/p99 with 1,000 open streams (target p99 < 20 ms)
// - agent RSS with 1,000 streams and 1,000 entries (target < 200 MB)
// - entry change → workload update latency p99 (target < 1 s)
// Run: ./node_modules/.bin/node bench/agent.bench.ts [ms-per-measurement] [jwt]
// ("jwt": the FetchJWTSVID part only, e.g. under NODE_OPTIONS=--cpu-prof for profiles)
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { adminClients, entry } from '../test/helpers/admin.ts';
import { startAgent } from '../test/helpers/agent-process.ts';
import { startServer } from '../test/helpers/server-process.ts';
import {
  fetchX509,
  header,
  unary,
  workloadClient,
  type WorkloadClient,
} from '../test/helpers/workload-grpc.ts';
import { compare, measure, measureAsync } from './lib.ts';

const ms = Number(process.argv[2] ?? 2000);
const only = process.argv[3];
const UID = process.getuid?.() ?? 0;
const STREAMS = 1000;
const ENTRIES = 1000;

// One agent minting as fast as it can: measure the path, not the per-address signing limit.
const server = await startServer({
  config: { log_level: 'warn', rate_limit: { signing_per_second: 0 } },
});
const admin = adminClients(server.adminSocket);
const token = await admin.agents.createJoinToken({});
const agent = await startAgent(server, { joinToken: token.token });
try {
  // 1,000 entries on this agent; one of them is this process's.
  const others = Array.from({ length: ENTRIES - 1 }, (_, i) =>
    entry(`spiffe://example.org/bench/${i}`, token.agentSpiffeId, [`unix:uid:${100_000 + i}`]),
  );
  for (let i = 0; i < others.length; i += 500)
    await admin.entries.batchCreateEntry({ entries: others.slice(i, i + 500) });
  const mine = await admin.entries.batchCreateEntry({
    entries: [entry('spiffe://example.org/bench/me', token.agentSpiffeId, [`unix:uid:${UID}`])],
  });
  const myId = mine.results[0]!.entry!.id;
  // 25 connections of their own: 40 streams each stays under the agent's per-connection limit.
  const clients = Array.from({ length: 25 }, () => workloadClient(agent.socketPath, true));
  await firstMessage(clients[0]!, 30_000);

  // Streams first: the memory target is about streams and entries, not JWT churn.
  if (only !== 'jwt') await streamsBench(clients, myId);
  // The agent pre-mints X.509-SVIDs for all 1,000 entries at start: wait for it to finish, so
  // that work is not charged to the JWT measurements.
  await quiet([agent.proc.pid!, server.proc.pid!]);
  await jwtBench(clients);
  for (const c of clients) c.close();
} finally {
  await agent.stop();
  await server.stop();
}

async function firstMessage(client: WorkloadClient, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const t0 = performance.now();
    const s = fetchX509(client);
    try {
      await s.next(2000);
      return performance.now() - t0;
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      s.cancel();
    }
  }
}

/**
 * FetchJWTSVID, with the method spelled out because the numbers are easy to misread:
 * - every call is a real Workload API call: grpc-js client in this process → the agent's Unix
 *   socket → (miss only) the agent's mTLS Connect call to the server, which signs and audits.
 *   A miss is a call whose audience is new (`aud-<n>`), so the agent must mint; a hit repeats one
 *   audience. 32 calls are kept in flight over 25 connections.
 * - the required ratio is miss rate / raw crypto.sign rate (P-256, one thread, in this process),
 *   both measured in alternating rounds and the best of each kept (bench/lib.ts compare()).
 *   It is a wall-clock ratio of a three-process pipeline (this client, the agent, the server)
 *   against one thread signing, on a machine whose cores are shared: the client's own gRPC work
 *   competes with the agent and server for the same cores, and other tenants' load moves it.
 * - so the CPU time the agent and the server spend per call is printed too (utime+stime of
 *   each process from /proc/<pid>/stat over the measurement, divided by the calls; the
 *   client's own, grpc-js in this process, beside it for scale), and a
 *   CPU-normalised ratio: CPU per raw sign / (agent + server CPU per miss). That one does not
 *   depend on the core count, on the client's cost, or on neighbours, and says how many misses
 *   the agent and server together serve per core for each raw signature one core makes.
 */
async function jwtBench(clients: WorkloadClient[]): Promise<void> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const data = Buffer.alloc(256, 7);
  let n = 0;
  const fetchJwt = (audience: string) =>
    unary(clients[n++ % clients.length]!, 'FetchJWTSVID', { audience: [audience] }, header());
  const cpu: Record<string, { agentUs: number; serverUs: number; clientUs: number }> = {};
  const withCpu = async (name: string, run: () => Promise<number>): Promise<number> => {
    const n0 = n;
    const a0 = cpuUs(agent.proc.pid!);
    const s0 = cpuUs(server.proc.pid!);
    const c0 = process.cpuUsage();
    const rate = await run();
    const calls = n - n0;
    const c = process.cpuUsage(c0);
    const now = {
      agentUs: (cpuUs(agent.proc.pid!) - a0) / calls,
      serverUs: (cpuUs(server.proc.pid!) - s0) / calls,
      clientUs: (c.user + c.system) / calls,
    };
    const best = cpu[name];
    // Best of the rounds, like the rates (ticks are 10 ms: long runs keep the rounding small).
    if (!best || now.agentUs + now.serverUs < best.agentUs + best.serverUs) cpu[name] = now;
    return rate;
  };
  let signCpuUs = Infinity;
  const rawSign = () => {
    const t0 = process.cpuUsage();
    let k = 0;
    const rate = measure(
      'raw crypto.sign (P-256, sync)',
      () => {
        k++;
        return sign('sha256', data, key);
      },
      ms,
    );
    const used = process.cpuUsage(t0);
    signCpuUs = Math.min(signCpuUs, (used.user + used.system) / k);
    return rate;
  };
  const MISS = 'FetchJWTSVID cache miss (32 in flight)';
  const HIT = 'FetchJWTSVID cache hit (32 in flight)';
  const rates = await compare(rawSign, [
    () => withCpu(MISS, () => measureAsync(MISS, () => fetchJwt(`aud-${n}`), ms, 32)),
    () => withCpu(HIT, () => measureAsync(HIT, () => fetchJwt('same'), ms, 32)),
  ]);
  const r = rates[0]! / rates.baseline;
  console.log(
    `${'ratio FetchJWTSVID miss / raw sign'.padEnd(48)} ${r.toFixed(3)} (target ≥ 0.40: ${r >= 0.4 ? 'ok' : 'BELOW'})`,
  );
  console.log(
    `${'ratio FetchJWTSVID hit / raw sign'.padEnd(48)} ${(rates[1]! / rates.baseline).toFixed(3)}`,
  );
  console.log(`${'CPU per raw sign'.padEnd(48)} ${signCpuUs.toFixed(1)} µs`);
  for (const name of [MISS, HIT]) {
    const c = cpu[name]!;
    console.log(
      `${('CPU per call, ' + name.replace(' (32 in flight)', '')).padEnd(48)} agent ${c.agentUs.toFixed(0)} µs, server ${c.serverUs.toFixed(0)} µs (client, this process: ${c.clientUs.toFixed(0)} µs)`,
    );
  }
  const miss = cpu[MISS]!;
  console.log(
    `${'ratio (CPU) raw sign / agent+server per miss'.padEnd(48)} ${(signCpuUs / (miss.agentUs + miss.serverUs)).toFixed(3)}`,
  );
}

/** Resolves once the processes together used under 5% of a core in three 500 ms windows running. */
async function quiet(pids: number[]): Promise<void> {
  const total = () => pids.reduce((sum, pid) => sum + cpuUs(pid), 0);
  let calm = 0;
  for (let i = 0; i < 240 && calm < 3; i++) {
    const c0 = total();
    await new Promise((r) => setTimeout(r, 500));
    calm = total() - c0 < 25_000 ? calm + 1 : 0;
  }
}

/** utime + stime of a process, in µs (clock ticks of 10 ms: USER_HZ is 100 on Linux). */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

async function streamsBench(clients: WorkloadClient[], myId: string): Promise<void> {
  const latencies: number[] = [];
  const streams: ReturnType<typeof fetchX509>[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const t0 = performance.now();
    const s = fetchX509(clients[i % clients.length]!);
    await s.next(10_000);
    latencies.push(performance.now() - t0);
    streams.push(s);
  }
  const p = percentiles(latencies);
  console.log(
    `${'FetchX509SVID first message, 1,000 streams'.padEnd(48)} p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms (target p99 < 20 ms: ${p.p99 < 20 ? 'ok' : 'ABOVE'})`,
  );
  const rss = agentRssMb();
  console.log(
    `${'agent RSS, 1,000 streams + 1,000 entries'.padEnd(48)} ${rss.toFixed(0)} MB (target < 200 MB: ${rss < 200 ? 'ok' : 'ABOVE'})`,
  );

  // Entry change → every open stream gets its update: measured at a sample of streams.
  const updates: number[] = [];
  for (let round = 1; round <= 20; round++) {
    const t0 = performance.now();
    await admin.entries.batchUpdateEntry({
      updates: [{ entry: { id: myId, hint: `h${round}` }, mask: ['hint'] }],
    });
    const sample = streams.filter((_, i) => i % 50 === round % 50);
    await Promise.all(
      sample.map((s) => s.next(5000).then(() => updates.push(performance.now() - t0))),
    );
    // Drain the others so their queues stay bounded.
    await Promise.all(streams.filter((_, i) => i % 50 !== round % 50).map((s) => s.next(5000)));
  }
  const u = percentiles(updates);
  console.log(
    `${'entry change → workload update'.padEnd(48)} p50 ${u.p50.toFixed(0)} ms, p99 ${u.p99.toFixed(0)} ms (target p99 < 1000 ms: ${u.p99 < 1000 ? 'ok' : 'ABOVE'})`,
  );
  for (const s of streams) s.cancel();
}

function agentRssMb(): number {
  const status = readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function percentiles(xs: number[]): { p50: number; p99: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
}
