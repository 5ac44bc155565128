// The PostgreSQL proxy handler in a process of its own, for bench/proxy-postgres.bench.ts: a
// loopback listener (proxy-core's stood in: src/agent/proxy/postgres/testing/) whose connections
// are all granted the credential given in the environment. Prints `port N` and `ready`; on
// SIGTERM prints how many credentials were asked and exits.
// Run: node bench/proxy-postgres-proxy.ts UPSTREAM_PORT USER   (password in PROXY_BENCH_PASSWORD)
import { KernelRelay } from '../src/agent/proxy/kernel-relay/kernel-relay.ts';
import { createPostgresHandler } from '../src/agent/proxy/postgres/postgres-handler.ts';
import {
  type StandIn,
  released,
  serverWorkload,
  standInListener,
} from '../src/agent/proxy/postgres/testing/stand-in-connection.ts';

const [upstreamPort, user] = process.argv.slice(2);
const password = process.env.PROXY_BENCH_PASSWORD ?? '';
const credential = released(user ?? 'postgres', password);
// PROXY_BENCH_KERNEL_RELAY=off: user space only; else the kernel relay when this process may load it.
const opened =
  process.env.PROXY_BENCH_KERNEL_RELAY === 'off' ? { reason: 'off' } : KernelRelay.open(4096);
const standIn: StandIn = {
  server: serverWorkload({ port: Number(upstreamPort) }),
  credential: async () => credential,
  asked: 0,
  ...('relay' in opened ? { kernelRelay: opened.relay } : {}),
};
const quiet = { info() {}, warn: (f: object, m: string) => console.error(m, f), debug() {} };
const proxy = await standInListener(createPostgresHandler(), standIn, quiet);
process.stdout.write(
  `port ${proxy.port}\nkernel relay ${'relay' in opened ? 'on' : `off (${opened.reason})`}\nready\n`,
);
process.once('SIGTERM', () => {
  process.stdout.write(`connections ${standIn.asked}\n`);
  void proxy.close().then(() => process.exit(0));
});
