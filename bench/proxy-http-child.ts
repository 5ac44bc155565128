// One side of bench/proxy-http.bench.ts, in its own process so that neither shares an event loop
// with the load generator:
//   upstream   a plain node:http server answering every request with a small constant body (and
//              401 when a request through the proxy lacks the injected credential);
//   proxy PORT the proxy's HTTP handler behind a loopback listener for a server workload at
//              127.0.0.1:PORT presenting `authorization-bearer` — every request decided (a
//              stand-in decision from memory, as a credential-cache hit), the credential injected,
//              the answer scrubbed, keep-alive upstream.
// Prints the listening port on stdout.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpHandler } from '../src/agent/proxy/http/http-handler.ts';
import {
  serverWorkload,
  standInListener,
  StandInConnections,
} from '../src/agent/proxy/http/testing/stand-in-connections.ts';

export const BENCH_TOKEN = `bench-token-${'x'.repeat(40)}`;
const body = Buffer.from('{"ok":true,"items":[1,2,3,4,5,6,7,8]}');

const [role, upstreamPort] = process.argv.slice(2);
if (!import.meta.main) {
  // Imported by the bench for BENCH_TOKEN: nothing to start.
} else if (role === 'upstream') {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const a = req.headers.authorization;
    const ok = a === undefined || a === `Bearer ${BENCH_TOKEN}` || a === 'Bearer direct';
    res.writeHead(ok ? 200 : 401, {
      'content-type': 'application/json',
      'content-length': body.length,
    });
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
} else if (role === 'proxy' && upstreamPort) {
  const w = serverWorkload({
    name: 'bench',
    host: '127.0.0.1',
    port: Number(upstreamPort),
    present: 'authorization-bearer',
  });
  const connections = new StandInConnections([w], () => ({
    allow: { kind: 'token', token: BENCH_TOKEN },
  }));
  connections.recordAsked = false;
  const handler = createHttpHandler();
  const l = await standInListener(connections, w, (s, conn) => handler.handle(s, conn));
  console.log(l.port);
} else {
  throw new Error('usage: proxy-http-child.ts upstream | proxy <upstream port>');
}
// Killed by the bench with SIGTERM: exit normally, so that --cpu-prof (NODE_OPTIONS) writes its profile.
if (import.meta.main) process.once('SIGTERM', () => process.exit(0));
