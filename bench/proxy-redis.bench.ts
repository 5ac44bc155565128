// Redis through the credential-injection proxy vs straight to the same Redis (issue 11,
// "Performance": redis-benchmark GET/SET ratio ≥ 0.5).
// - direct: redis-benchmark → Redis :6379, authenticating as a bench ACL user itself;
// - proxy:  the same redis-benchmark, without credentials → the proxy's Redis handler behind a
//   loopback listener (proxy-redis-child.ts) → the same Redis, the ACL user injected per
//   connection and every command framed by the proxy's scanner.
// Same commands, clients and request count for both, in alternating rounds (best of each kept).
// Beside them, HAProxy (reference-proxy.ts) relaying the same redis-benchmark, which then
// authenticates itself, to the same Redis: what any hop costs here.
// The bench ACL user exists only for the run.
// Run: ./node_modules/.bin/node bench/proxy-redis.bench.ts [ms-per-measurement]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { loadNote } from './lib.ts';
import { NO_REFERENCE, startReferenceProxy, type ReferenceProxy } from './reference-proxy.ts';

const ms = Number(process.argv[2] ?? 2000);
const TARGET = 0.5;
const CLIENTS = 16;
const user = `tessera_bench_${randomBytes(4).toString('hex')}`;
const password = randomBytes(18).toString('base64url');

/** requests/s of GET and SET from one redis-benchmark run. */
function bench(port: number, auth: boolean, requests: number): { GET: number; SET: number } {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-c',
    String(CLIENTS),
    '-n',
    String(requests),
  ];
  args.push('-t', 'get,set', '--csv');
  if (auth) args.push('--user', user, '-a', password);
  const out = execFileSync('redis-benchmark', args, { encoding: 'utf8', timeout: 120_000 });
  const rate = (test: string): number => {
    const line = out.split('\n').find((l) => l.startsWith(`"${test}"`));
    if (!line) throw new Error(`redis-benchmark printed no ${test} line:\n${out}`);
    return Number(JSON.parse(`[${line}]`)[1]);
  };
  return { GET: rate('GET'), SET: rate('SET') };
}

execFileSync('redis-cli', ['ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '+@all']);
/** A proxy child: its port and whether the kernel relay is on. */
async function startChild(kernelRelay: 'auto' | 'off') {
  const proc = spawn(process.execPath, [path.join(import.meta.dirname, 'proxy-redis-child.ts')], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, PROXY_BENCH_KERNEL_RELAY: kernelRelay },
  });
  proc.stdin.end(JSON.stringify({ username: user, password }));
  const lines: string[] = [];
  for await (const line of createInterface({ input: proc.stdout })) {
    lines.push(line);
    if (lines.length === 2) break;
  }
  const port = Number(lines[0]);
  if (!port) throw new Error('proxy-redis-child exited without a port');
  return { proc, port, relay: lines[1] ?? '?' };
}

const children: Array<Awaited<ReturnType<typeof startChild>>> = [];
let reference: ReferenceProxy | undefined;
try {
  children.push(await startChild('auto'), await startChild('off'));
  const [kernel, userSpace] = children as [(typeof children)[0], (typeof children)[0]];
  reference = await startReferenceProxy('tcp', 6379);
  console.log(loadNote('before'));
  // Size the runs to about `ms` each from a short direct run.
  const probe = bench(6379, true, 20_000);
  const requests = Math.max(20_000, Math.round(((probe.GET + probe.SET) / 2) * (ms / 1000)));
  bench(kernel.port, false, 20_000); // warm-up
  bench(userSpace.port, false, 20_000);
  console.log(`${'proxy kernel relay'.padEnd(48)} ${kernel.relay}`);
  const sides: Array<readonly [string, number, boolean]> = [
    ['direct', 6379, true],
    ['through the proxy', kernel.port, false],
    ['through the proxy, kernel_relay off', userSpace.port, false],
  ];
  if (reference) sides.push([`through ${reference.label}`, reference.port, true]);
  const best = sides.map(() => ({ GET: 0, SET: 0 }));
  for (let round = 0; round < 3; round++) {
    for (const [i, [, port, auth]] of sides.entries()) {
      const r = bench(port, auth, requests);
      for (const t of ['GET', 'SET'] as const) best[i]![t] = Math.max(best[i]![t], r[t]);
    }
  }
  for (const t of ['GET', 'SET'] as const) {
    for (const [i, [name]] of sides.entries()) {
      const label = `${t} ${name} (${CLIENTS} clients)`;
      console.log(
        `${label.padEnd(48)} ${Math.round(best[i]![t]).toLocaleString('en-US').padStart(12)} req/s`,
      );
    }
    for (const [i, name] of [
      [1, `ratio ${t} proxy / direct`],
      [2, `  the same with proxy.kernel_relay off`],
    ] as const) {
      const r = best[i]![t] / best[0]![t];
      console.log(
        `${name.padEnd(48)} ${r.toFixed(3)} (target ≥ ${TARGET.toFixed(2)}: ${r >= TARGET ? 'ok' : 'BELOW'})`,
      );
    }
    const ref = reference ? best[3]![t] / best[0]![t] : 0;
    console.log(
      `${'  reference: a C proxy in the same path / direct'.padEnd(48)} ${reference ? `${ref.toFixed(3)} (${reference.label}: relays bytes, no AUTH rewriting)` : NO_REFERENCE}`,
    );
  }
  console.log(loadNote('after'));
} finally {
  reference?.stop();
  for (const c of children) c.proc.kill();
  execFileSync('redis-cli', ['ACL', 'DELUSER', user]);
}
