// The proxy side of bench/proxy-redis.bench.ts, in its own process so that it shares no event
// loop with the load generator: the Redis handler behind a loopback listener for the Redis at
// 127.0.0.1:6379, injecting the ACL user and password given on stdin (JSON) — a stand-in
// ProxyConnection whose credential is in memory, as a credential-cache hit. Prints the port,
// then whether the kernel relay is on (PROXY_BENCH_KERNEL_RELAY=off: never).
import { KernelRelay } from '../src/agent/proxy/kernel-relay/kernel-relay.ts';
import { createRedisHandler } from '../src/agent/proxy/redis/redis-handler.ts';
import { startStandIn } from '../src/agent/proxy/testing/stand-in-listener.ts';

let input = '';
for await (const chunk of process.stdin) input += String(chunk);
const { username, password } = JSON.parse(input) as { username: string; password: string };
// PROXY_BENCH_KERNEL_RELAY=off: user space only; else the kernel relay when this process may load it.
const opened =
  process.env.PROXY_BENCH_KERNEL_RELAY === 'off' ? { reason: 'off' } : KernelRelay.open(4096);
const proxy = await startStandIn({
  ...('relay' in opened ? { kernelRelay: opened.relay } : {}),
  handler: createRedisHandler(),
  server: { name: 'bench-redis', host: '127.0.0.1', port: 6379, protocol: 'redis' },
  credential: { value: { kind: 'password', username, password }, expiresAt: null, leaseId: '' },
});
console.log(proxy.port);
console.log(`kernel relay ${'relay' in opened ? 'on' : `off (${opened.reason})`}`);
