import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ClientHttp2Session } from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { PermissionDeniedError, UnauthenticatedError } from '../../core/errors.ts';
import { authorizeAny, authorizeId, authorizeMemberOf, type Authorizer } from './authorizer.ts';
import {
  FakeWorkloadApi,
  makeAuthority,
  mintSvid,
  svidMessage,
  type TestAuthority,
} from './testing/fake-workload-api.ts';
import {
  createMtlsHttp2Server,
  createMtlsHttpsServer,
  connectMtlsHttp2,
  httpsAgent,
  requestPeer,
} from './https.ts';
import { bundleSet, StaticX509Source, x509SvidFromDer } from './static-source.ts';
import {
  connectMtls,
  createMtlsServer,
  guardClientSocket,
  peerSpiffeId,
  tlsClientOptions,
  type MtlsSource,
} from './tls.ts';
import { pickByHint, X509Source } from './x509-source.ts';

const SERVER = 'spiffe://example.org/server';
const CLIENT = 'spiffe://example.org/client';
let api: FakeWorkloadApi;
let td: TestAuthority;
let partner: TestAuthority;
let rogue: TestAuthority; // claims example.org with another CA key
let serverSrc: X509Source;
let clientSrc: X509Source;

async function staticSvid(
  a: TestAuthority,
  id: string,
  bundles: Record<string, Uint8Array[]>,
): Promise<StaticX509Source> {
  const m = await mintSvid(a, id);
  return new StaticX509Source(x509SvidFromDer(id, m.chainDer, m.pkcs8), bundleSet(bundles));
}

before(async () => {
  td = await makeAuthority('example.org');
  partner = await makeAuthority('partner.test');
  rogue = await makeAuthority('example.org');
  api = new FakeWorkloadApi();
  await api.start();
  api.x509 = {
    svids: [
      ...svidMessage(td, await mintSvid(td, SERVER), 'server'),
      ...svidMessage(td, await mintSvid(td, CLIENT), 'client'),
    ],
    federatedBundles: { 'spiffe://partner.test': partner.caDer },
  };
  const fast = { initialMs: 5, maxMs: 40 };
  serverSrc = await X509Source.open({
    address: api.uri,
    picker: pickByHint('server'),
    backoff: fast,
    timeoutMs: 5000,
  });
  clientSrc = await X509Source.open({
    address: api.uri,
    picker: pickByHint('client'),
    backoff: fast,
    timeoutMs: 5000,
  });
});
after(async () => {
  await serverSrc.close();
  await clientSrc.close();
  await api.dispose();
});

interface EchoServer {
  readonly port: number;
  readonly received: Buffer[];
  readonly accepted: TLSSocket[];
  readonly rejects: Error[];
  close(): Promise<void>;
}

async function echoServer(source: MtlsSource, authorizer: Authorizer): Promise<EchoServer> {
  const received: Buffer[] = [];
  const accepted: TLSSocket[] = [];
  const rejects: Error[] = [];
  const server = createMtlsServer(
    source,
    authorizer,
    (sock) => {
      accepted.push(sock);
      sock.on('data', (d: Buffer) => {
        received.push(d);
        sock.write(`pong from ${SERVER} to ${peerSpiffeId(sock)?.toString()}`);
      });
      sock.on('error', () => {});
    },
    { onReject: (e) => rejects.push(e) },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    received,
    accepted,
    rejects,
    close: () =>
      new Promise((r) => {
        for (const s of accepted) s.destroy();
        server.close(() => r());
      }),
  };
}

const settle = (ms = 200): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `p`, at most `ms` (the timer is cleared so it never holds the process). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (t = setTimeout(r, ms)))]);
  clearTimeout(t);
}

/** Connects with a raw guarded socket and writes at once (before the handshake completes). */
async function rawAttempt(
  port: number,
  source: MtlsSource,
  authorizer: Authorizer,
): Promise<Error | undefined> {
  const sock = tls.connect({ host: '127.0.0.1', port, ...tlsClientOptions(source) });
  const rejected: Error[] = [];
  guardClientSocket(sock, source, authorizer, { onReject: (e) => rejected.push(e) });
  sock.write('secret before handshake');
  sock.on('error', () => {});
  await within(new Promise((r) => sock.once('close', r)), 2000);
  sock.destroy();
  return rejected[0];
}

test('two SVIDs from one CA: handshake, data both ways, peer IDs on both sides', async () => {
  const s = await echoServer(serverSrc, authorizeId(CLIENT));
  try {
    const sock = await connectMtls(clientSrc, authorizeId(SERVER), {
      host: '127.0.0.1',
      port: s.port,
    });
    assert.equal(peerSpiffeId(sock)?.toString(), SERVER);
    sock.write('ping');
    const [reply] = (await once(sock, 'data')) as [Buffer];
    assert.equal(reply.toString(), `pong from ${SERVER} to ${CLIENT}`);
    assert.equal(s.received.join(''), 'ping');
    sock.destroy();
  } finally {
    await s.close();
  }
});

test('server refuses a client with the wrong SPIFFE ID before any data', async () => {
  const s = await echoServer(serverSrc, authorizeId(CLIENT));
  const intruder = await staticSvid(td, 'spiffe://example.org/intruder', {
    'example.org': [td.caDer],
  });
  try {
    await rawAttempt(s.port, intruder, authorizeAny());
    await settle();
    assert.equal(s.accepted.length, 0);
    assert.deepEqual(s.received, []);
    assert.ok(s.rejects[0] instanceof PermissionDeniedError, String(s.rejects[0]));
  } finally {
    await s.close();
  }
});

test('server refuses another trust domain, a cert not chaining to the bundle, and no cert', async () => {
  const s = await echoServer(serverSrc, authorizeAny());
  const stranger = await makeAuthority('stranger.test');
  const foreign = await staticSvid(stranger, 'spiffe://stranger.test/x', {
    'example.org': [td.caDer],
  });
  const forged = await staticSvid(rogue, CLIENT, { 'example.org': [td.caDer] });
  try {
    await rawAttempt(s.port, foreign, authorizeAny());
    await rawAttempt(s.port, forged, authorizeAny());
    // No client certificate at all.
    const anon = tls.connect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false });
    anon.on('error', () => {});
    anon.write('anonymous data');
    await within(new Promise((r) => anon.once('close', r)), 2000);
    anon.destroy();
    await settle();
    assert.equal(s.accepted.length, 0);
    assert.deepEqual(s.received, []);
    assert.equal(s.rejects.length, 3);
    assert.match(s.rejects[2]!.message, /presented no certificate/);
    assert.ok(s.rejects.every((e) => e instanceof UnauthenticatedError));
    assert.match(s.rejects[0]!.message, /no X.509 bundle for trust domain "stranger.test"/);
    assert.match(s.rejects[1]!.message, /does not lead to a CA in the bundle/);
  } finally {
    await s.close();
  }
});

test('federated trust domain: verified against its own bundle, then authorized by membership', async () => {
  const s = await echoServer(serverSrc, authorizeMemberOf('partner.test'));
  const friend = await staticSvid(partner, 'spiffe://partner.test/api', {
    'example.org': [td.caDer],
  });
  try {
    const sock = await connectMtls(friend, authorizeId(SERVER), {
      host: '127.0.0.1',
      port: s.port,
    });
    sock.write('hi');
    const [reply] = (await once(sock, 'data')) as [Buffer];
    assert.match(reply.toString(), /to spiffe:\/\/partner.test\/api$/);
    sock.destroy();
  } finally {
    await s.close();
  }
});

test('client refuses a server with the wrong ID, or a forged certificate; nothing is sent', async () => {
  const s = await echoServer(serverSrc, authorizeAny());
  try {
    await assert.rejects(
      connectMtls(clientSrc, authorizeId('spiffe://example.org/other'), {
        host: '127.0.0.1',
        port: s.port,
      }),
      PermissionDeniedError,
    );
    const e = await rawAttempt(s.port, clientSrc, authorizeId('spiffe://example.org/other'));
    assert.ok(e instanceof PermissionDeniedError);
    await settle();
    assert.deepEqual(
      s.received,
      [],
      'data written before the handshake must never reach the server',
    );
  } finally {
    await s.close();
  }
  const forgedServer = await staticSvid(rogue, SERVER, { 'example.org': [rogue.caDer] });
  const f = await echoServer(forgedServer, authorizeAny());
  try {
    const e = await rawAttempt(f.port, clientSrc, authorizeId(SERVER));
    assert.ok(e instanceof UnauthenticatedError, String(e));
    await settle();
    assert.deepEqual(f.received, []);
  } finally {
    await f.close();
  }
});

test('server rotation is picked up by the next connection without a restart', async () => {
  const s = await echoServer(serverSrc, authorizeAny());
  const saved = api.x509;
  try {
    const serial = async (): Promise<string> => {
      const sock = await connectMtls(clientSrc, authorizeId(SERVER), {
        host: '127.0.0.1',
        port: s.port,
      });
      const sn = sock.getPeerCertificate().serialNumber;
      sock.destroy();
      return sn;
    };
    const first = await serial();
    const updated = new Promise<void>((r) => {
      const off = serverSrc.onUpdate(() => (off(), r()));
    });
    api.x509 = {
      svids: [...svidMessage(td, await mintSvid(td, SERVER), 'server'), saved.svids![1]!],
      federatedBundles: { 'spiffe://partner.test': partner.caDer },
    };
    api.push();
    await within(updated, 5000);
    const second = await serial();
    assert.notEqual(second, first);
    assert.equal(second, serverSrc.getX509Svid().certificates[0]!.serialNumber);
  } finally {
    api.x509 = saved;
    await s.close();
  }
});

test('https: server and agent authenticate each other by SPIFFE ID', async () => {
  const server = createMtlsHttpsServer(serverSrc, authorizeId(CLIENT), (req, res, peer) => {
    assert.equal(requestPeer(req)?.toString(), peer.toString());
    res.end(`hello ${peer.toString()}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const get = (agent: https.Agent): Promise<string> =>
    new Promise((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(`${res.statusCode} ${body}`));
        })
        .on('error', reject);
    });
  const good = httpsAgent(clientSrc, authorizeId(SERVER));
  const picky = httpsAgent(clientSrc, authorizeId('spiffe://example.org/elsewhere'));
  try {
    assert.equal(await get(good), `200 hello ${CLIENT}`);
    await assert.rejects(get(picky), PermissionDeniedError);
    const intruder = await staticSvid(td, 'spiffe://example.org/intruder', {
      'example.org': [td.caDer],
    });
    const bad = httpsAgent(intruder, authorizeId(SERVER));
    await assert.rejects(get(bad));
    bad.destroy();
  } finally {
    good.destroy();
    picky.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('http2: secure server and client session authenticate by SPIFFE ID', async () => {
  const server = createMtlsHttp2Server(
    serverSrc,
    authorizeMemberOf('example.org'),
    (_req, res, peer) => {
      res.end(`h2 hello ${peer.toString()}`);
    },
  );
  server.on('sessionError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const request = (session: ClientHttp2Session): Promise<string> =>
    new Promise((resolve, reject) => {
      session.on('error', reject);
      const req = session.request({ ':path': '/' });
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => resolve(body));
      req.on('error', reject);
      req.end();
    });
  const ok = await connectMtlsHttp2(`https://127.0.0.1:${port}`, clientSrc, authorizeId(SERVER));
  const outsider = await staticSvid(partner, 'spiffe://partner.test/x', {
    'example.org': [td.caDer],
  });
  try {
    assert.equal(await request(ok), `h2 hello ${CLIENT}`);
    await assert.rejects(
      connectMtlsHttp2(`https://127.0.0.1:${port}`, clientSrc, authorizeId(CLIENT)),
      PermissionDeniedError,
    );
    // Authenticated (federated bundle) but not a member of example.org: the session is refused.
    const refused = await connectMtlsHttp2(`https://127.0.0.1:${port}`, outsider, authorizeAny());
    await assert.rejects(request(refused));
    refused.destroy();
  } finally {
    ok.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
