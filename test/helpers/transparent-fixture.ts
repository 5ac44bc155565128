// Runs inside a test's network namespace (`ip netns exec NS node transparent-fixture.ts ...`):
// an upstream line-echo server at the server workload's address and the agent's transparent
// listener, with test stand-ins for what proxy-core provides (ProxyConnections and the handler
// catalog): one server workload at --upstream whose credential is "brokered-token", and a
// handler that sends `credential=<token>` upstream before relaying the client's bytes.
// Prints "ready" and then the listener's log lines as JSON on stdout; stops on SIGTERM.
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import type { ServerWorkload } from '../../src/core/access.ts';
import type { AttestedCaller } from '../../src/agent/attestation/caller.ts';
import type {
  ProxyConnection,
  ProxyConnections,
  ProxyLog,
  ProxyProtocolHandler,
} from '../../src/agent/proxy/proxy-connection.ts';
import { TransparentListener } from '../../src/agent/proxy/transparent/transparent-listener.ts';

const { values } = parseArgs({
  options: {
    upstream: { type: 'string' },
    listen: { type: 'string' },
    passthrough: { type: 'boolean', default: false },
  },
});
const [upHost, upPort] = String(values.upstream).split(':') as [string, string];
const [listenHost, listenPort] = String(values.listen).split(':') as [string, string];

// Upstream: answers every line with "upstream: <line>".
const upstream = createServer((s) => {
  let buf = '';
  s.on('error', () => {});
  s.on('data', (d) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      s.write(`upstream: ${buf.slice(0, i)}\n`);
      buf = buf.slice(i + 1);
    }
  });
});
await new Promise<void>((r) => upstream.listen(Number(upPort), upHost, r));

const server: ServerWorkload = {
  name: 'echo',
  host: upHost,
  port: Number(upPort),
  protocol: 'tcp',
  pathPrefix: '',
  present: '',
  tls: false,
  tlsCa: '',
  tlsDecrypt: false,
  createdAt: 0,
  updatedAt: 0,
};
const log: ProxyLog = {
  info: (fields, msg) => console.log(JSON.stringify({ level: 'info', msg, ...fields })),
  warn: (fields, msg) => console.log(JSON.stringify({ level: 'warn', msg, ...fields })),
  debug: () => {},
};
const stop = new AbortController();
const connections: ProxyConnections = {
  find: (host, port) => (host === server.host && port === server.port ? server : undefined),
  byName: (name) => (name === server.name ? server : undefined),
  open: async (_client, sw, wayIn): Promise<ProxyConnection> => {
    log.info({ server: sw.name, wayIn }, 'stand-in: open');
    return {
      server: sw,
      // The stand-in does not attest: proxy-core's ProxyConnections does.
      caller: {} as AttestedCaller,
      wayIn,
      signal: stop.signal,
      credential: async () => ({
        credential: {
          value: { kind: 'token', token: 'brokered-token' },
          expiresAt: null,
          leaseId: '',
        },
        spiffeId: 'spiffe://example.org/client',
        server: sw.name,
        present: sw.present,
        policy: 'p',
        credentialProvider: 'cp',
        correlationId: 'c',
      }),
      connectUpstream: () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: sw.host, port: sw.port }, () => resolve(s));
          s.once('error', reject);
        }),
      upstreamTlsOptions: () => ({ servername: sw.host, rejectUnauthorized: true }),
      log,
    };
  },
};
const handler: ProxyProtocolHandler = {
  protocols: ['tcp'],
  async handle(client, conn) {
    const released = await conn.credential();
    const value = released.credential.value;
    const up = await conn.connectUpstream();
    up.write(`credential=${value.kind === 'token' ? value.token : ''}\n`);
    client.pipe(up);
    up.pipe(client);
    await new Promise<void>((resolve) => {
      const done = () => {
        client.destroy();
        up.destroy();
        resolve();
      };
      client.on('close', done);
      up.on('close', done);
      up.on('error', done);
    });
  },
};

const listener = await TransparentListener.create({
  listen: [{ host: listenHost, port: Number(listenPort) }],
  connections,
  handlerFor: (sw) => (handler.protocols.includes(sw.protocol) ? handler : undefined),
  passthrough: values.passthrough ?? false,
  log,
  maxConnections: 64,
});
process.on('SIGTERM', () => stop.abort());
console.log('ready');
await listener.run(stop.signal);
upstream.close();
