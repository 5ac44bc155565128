// Loopback TCP peer identification (src/agent/attestation/tcp-peer.ts), its CPU per connection:
// a child process holds N loopback connections to this process's listener, after leaving `churn`
// connections of its own in TIME_WAIT (what a client opening a connection per request leaves
// behind: thousands of rows in /proc/net/tcp); each accepted socket is identified in turn —
// client socket found, its holder proven unique by the /proc/<pid>/fd walk, pinned — with the
// socket found over NETLINK_SOCK_DIAG against found in the /proc/net/tcp{,6} tables (baseline),
// and, where the agent may load it (root, kernel BTF), with the holders from the kernel's file
// iterator (kernel-socket-holders.ts) instead of the walk — what the agent uses there.
// Run: ./node_modules/.bin/node bench/tcp-peer.bench.ts [ms-per-measurement] [N] [churn]
//
// Measured (2 cores, load ~4, ~130 processes, ~1,200 descriptors), CPU per identify:
//   before (tables read whole; the walk by readdirSync/readlinkSync + a stat per process):
//     22.6-27.2 ms with ~6,300 rows in /proc/net/tcp;
//   the tables + the new walk (socket-owner.ts): 18.6 ms with ~3,300 rows (O(rows));
//   NETLINK_SOCK_DIAG + the new walk: 5.2 ms whatever the rows — mostly the walk now, a readlink
//   per descriptor of the machine (~4 µs each, near what a C program takes).
// bench/proxy-agent.bench.ts, agent CPU per new connection (pgbench -S -C): 22.6 ms → 12.5 ms.
// The kernel iterator (2026-12-08, ~90 processes, ~700 descriptors): the walk's 3-5 ms → ~0.1 ms.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { releaseConnection } from '../src/agent/attestation/connection-peer.ts';
import { kernelSocketHolders } from '../src/agent/attestation/kernel-socket-holders.ts';
import { identifyTcpPeer, type TcpPeerOptions } from '../src/agent/attestation/tcp-peer.ts';
import { compare, loadNote, ratio } from './lib.ts';

const ms = Number(process.argv[2] ?? 2000);
const N = Number(process.argv[3] ?? 50);
const churn = Number(process.argv[4] ?? 3000);

const server = createServer();
const accepted: Socket[] = [];
server.on('connection', (s) => {
  s.on('error', () => {});
  accepted.push(s);
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const port = (server.address() as AddressInfo).port;

// The child: `churn` connections to a listener of its own, closed by the client side first
// (TIME_WAIT stays on its side for a minute), then N connections to us, held until killed.
const child = spawn(
  process.execPath,
  [
    '-e',
    `
    const net = require('node:net');
    const [port, n, churn] = process.argv.slice(1).map(Number);
    const own = net.createServer((s) => { s.on('error', () => {}); s.on('end', () => s.end()); });
    own.listen(0, '127.0.0.1', async () => {
      const p = own.address().port;
      for (let done = 0; done < churn; done += 100) {
        await Promise.all(Array.from({ length: Math.min(100, churn - done) }, () => new Promise((r) => {
          const c = net.connect(p, '127.0.0.1', () => c.end());
          c.on('error', r); c.on('close', r); c.resume();
        })));
      }
      const held = [];
      for (let i = 0; i < n; i++) {
        await new Promise((r) => held.push(net.connect(port, '127.0.0.1', r).on('error', () => {})));
      }
      process.stdout.write('ready\\n');
    });
    setInterval(() => {}, 1000);
    `,
    String(port),
    String(N),
    String(churn),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
try {
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the client child exited (${code})`)));
  });
  const deadline = Date.now() + 30_000;
  while (accepted.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  if (accepted.length < N) throw new Error(`only ${accepted.length} of ${N} connections accepted`);

  const rows = (t: string) => readFileSync(`/proc/net/${t}`, 'latin1').split('\n').length - 2;
  const pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  let fds = 0;
  for (const p of pids) {
    try {
      fds += readdirSync(`/proc/${p}/fd`).length;
    } catch {
      // gone, or not ours to read
    }
  }
  console.log(loadNote('start'));
  console.log(
    `${'machine'.padEnd(48)} ${rows('tcp')} rows in /proc/net/tcp, ${rows('tcp6')} in tcp6, ` +
      `${pids.length} processes, ${fds} descriptors`,
  );

  const cpu: Record<string, number> = {};
  const run = (name: string, o: TcpPeerOptions) => async () => {
    let n = 0;
    const c0 = process.cpuUsage();
    const start = performance.now();
    while (performance.now() - start < ms) {
      const peer = await identifyTcpPeer(accepted[n % N]!, o);
      if (!peer.ok || peer.caller.pid !== child.pid) {
        throw new Error(`${name}: not identified: ${peer.ok ? peer.caller.pid : peer.reason}`);
      }
      releaseConnection(peer);
      n++;
    }
    const c = process.cpuUsage(c0);
    const perOp = (c.user + c.system) / n;
    cpu[name] = Math.min(cpu[name] ?? Infinity, perOp);
    const rate = (n / (performance.now() - start)) * 1000;
    console.log(
      `${name.padEnd(48)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} identifies/s`,
    );
    return rate;
  };
  const kernel = await kernelSocketHolders();
  const subjects = [run('NETLINK_SOCK_DIAG + fd walk', {})];
  if (!('reason' in kernel))
    subjects.push(run('NETLINK_SOCK_DIAG + kernel file iterator', { kernel }));
  const r = await compare(run('/proc/net/tcp tables + fd walk', { sockDiag: false }), subjects);
  ratio('identifies/s, netlink / tables', r[0]!, r.baseline);
  if ('reason' in kernel) {
    console.log(`${'kernel file iterator'.padEnd(48)} not here: ${kernel.reason}`);
  } else {
    ratio('identifies/s, kernel iterator / fd walk', r[1]!, r[0]!);
  }
  for (const [name, us] of Object.entries(cpu)) {
    console.log(`${`  CPU per identify, ${name}`.padEnd(48)} ${(us / 1000).toFixed(2)} ms`);
  }
  console.log(loadNote('end'));
} finally {
  child.kill('SIGKILL');
  for (const s of accepted) s.destroy();
  server.close();
}
