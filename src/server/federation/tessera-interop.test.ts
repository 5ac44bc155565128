// Interop: the fetcher against a real Tessera server's own https_spiffe bundle endpoint (the
// HTTP/2-only mTLS API listener, server SVID spiffe://<td>/spire/server).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { initialFederationStatus } from '../../core/federation.ts';
import { bundleToPem } from '../../crypto/bundle-format.ts';
import { openStore } from '../../store/open.ts';
import { Auditor } from '../audit/auditor.ts';
import { loadServerConfig, systemClock, TesseraServer } from '../compose/server.ts';
import { FederationManager } from './federation-manager.ts';
import { generateKeyPairSync } from 'node:crypto';
import { issueX509Svid } from '../../crypto/x509/leaf.ts';
import { derToPem } from '../../crypto/x509/pem.ts';
import { makeCa } from '../../crypto/x509/testing/ca.ts';

let dir = '';
let server: TesseraServer;
let api = '';
const ac = new AbortController();
let done: Promise<void>;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-interop-'));
  const config = loadServerConfig(
    {
      trustDomain: 'a.test',
      dataDir: path.join(dir, 'a'),
      listen: '127.0.0.1:0',
      healthListen: '',
    },
    { TESSERA_LOG_LEVEL: 'silent' },
  );
  server = await TesseraServer.create(config);
  const listening = Promise.withResolvers<string>();
  done = server.run(ac.signal, (addr) => listening.resolve(addr.api));
  done.catch((e: unknown) => listening.reject(e));
  api = await listening.promise;
});
after(async () => {
  ac.abort();
  await done;
  await rm(dir, { recursive: true, force: true });
});

it("fetches a Tessera server's bundle over https_spiffe from its API listener", async () => {
  const store = await openStore({ kind: 'sqlite', path: path.join(dir, 'b.db') });
  try {
    const own = server.bundles.bundle;
    await store.bundles.put({ ...own, sequence: 0 });
    await store.federations.create({
      trustDomain: 'a.test',
      bundleEndpointUrl: `https://${api}/bundle`,
      profile: 'https_spiffe',
      endpointSpiffeId: 'spiffe://a.test/spire/server',
      source: 'api',
      createdAt: 0,
      updatedAt: 0,
      status: initialFederationStatus,
    });
    const m = new FederationManager({
      store,
      auditor: new Auditor(systemClock, store),
      clock: systemClock,
      log: { warn: () => {}, info: () => {} },
    });
    const r = await m.refresh('a.test');
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.updated, true);
    const got = await store.bundles.get('a.test');
    assert.equal(got?.sequence, own.sequence);
    assert.deepEqual(
      got?.x509Authorities.map((a) => Buffer.from(a.der).toString('base64')),
      own.x509Authorities.map((a) => Buffer.from(a.der).toString('base64')),
    );
    assert.deepEqual(
      got?.jwtAuthorities.map((k) => k.kid),
      own.jwtAuthorities.map((k) => k.kid),
    );
  } finally {
    await store.close();
  }
});

it('a second server federates with the first from its config file, and tells the hook', async () => {
  const pem = path.join(dir, 'a.pem');
  await writeFile(pem, bundleToPem(server.bundles.bundle));
  const yaml = path.join(dir, 'b.yaml');
  await writeFile(
    yaml,
    [
      'trust_domain: b.test',
      `data_dir: ${path.join(dir, 'b')}`,
      'listen: 127.0.0.1:0',
      "health_listen: ''",
      'key_manager: memory',
      'federation:',
      '  relationships:',
      '    - trust_domain: a.test',
      `      bundle_endpoint_url: https://${api}/bundle`,
      '      profile: https_spiffe',
      '      endpoint_spiffe_id: spiffe://a.test/spire/server',
      `      trust_bundle_file: ${pem}`,
    ].join('\n'),
  );
  const b = await TesseraServer.create(
    loadServerConfig({ config: yaml }, { TESSERA_LOG_LEVEL: 'silent' }),
  );
  const rel = await b.store.federations.get('a.test');
  assert.equal(rel?.source, 'config');
  assert.equal((await b.store.bundles.get('a.test'))?.sequence, 0, 'seeded from the PEM file');
  const told = Promise.withResolvers<string>();
  b.federation.manager.onBundleUpdated((td) => told.resolve(td));
  const stop = new AbortController();
  const running = b.run(stop.signal);
  try {
    const timeout = setTimeout(
      () => told.reject(new Error('no bundle update within 15 s')),
      15_000,
    );
    assert.equal(await told.promise, 'a.test');
    clearTimeout(timeout);
    const got = await b.store.bundles.get('a.test');
    assert.equal(got?.sequence, server.bundles.bundle.sequence);
    assert.equal(got?.jwtAuthorities.length, server.bundles.bundle.jwtAuthorities.length);
    const status = (await b.store.federations.get('a.test'))?.status;
    assert.equal(status?.failures, 0);
    assert.ok((status?.lastSuccessAt ?? 0) > 0);
  } finally {
    stop.abort();
    await running;
  }
});

it('federates over https_web with a Tessera public listener, trusting federation.ca_file', async () => {
  // A private WebPKI: a CA and a certificate for "localhost" that the public listener presents.
  const now = Date.now();
  const webCa = await makeCa('ec-p256', 'web-ca.test', now);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = await issueX509Svid({
    ca: webCa,
    subjectPublicKey: publicKey,
    spiffeId: 'spiffe://web-ca.test/oidc',
    dnsNames: ['localhost'],
    notBefore: now - 60_000,
    notAfter: now + 3_600_000,
  });
  const files = {
    ca: path.join(dir, 'web-ca.pem'),
    cert: path.join(dir, 'oidc.pem'),
    key: path.join(dir, 'oidc.key'),
  };
  await writeFile(files.ca, derToPem(webCa.certDer));
  await writeFile(files.cert, derToPem(cert.der));
  await writeFile(files.key, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const c = await TesseraServer.create(
    loadServerConfig(
      {
        trustDomain: 'c.test',
        dataDir: path.join(dir, 'c'),
        listen: '127.0.0.1:0',
        healthListen: '',
        publicListen: '127.0.0.1:0',
        publicCert: files.cert,
        publicKey: files.key,
        issuer: 'https://localhost',
      },
      { TESSERA_LOG_LEVEL: 'silent' },
    ),
  );
  const stopC = new AbortController();
  const listening = Promise.withResolvers<string>();
  const runningC = c.run(stopC.signal, (addr) => listening.resolve(addr.public));
  runningC.catch((e: unknown) => listening.reject(e));
  const port = (await listening.promise).split(':')[1];
  const yaml = path.join(dir, 'd.yaml');
  await writeFile(
    yaml,
    [
      'trust_domain: d.test',
      `data_dir: ${path.join(dir, 'd')}`,
      'listen: 127.0.0.1:0',
      "health_listen: ''",
      'key_manager: memory',
      'federation:',
      `  ca_file: ${files.ca}`,
      '  fetch_timeout: 5s',
      '  relationships:',
      '    - trust_domain: c.test',
      `      bundle_endpoint_url: https://localhost:${port}/bundle`,
      '      profile: https_web',
    ].join('\n'),
  );
  const d = await TesseraServer.create(
    loadServerConfig({ config: yaml }, { TESSERA_LOG_LEVEL: 'silent' }),
  );
  try {
    const r = await d.federation.manager.refresh('c.test');
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.bundle.sequence, c.bundles.bundle.sequence);
    assert.equal(r.bundle.x509Authorities.length, c.bundles.bundle.x509Authorities.length);
    const metric = await d.metrics.registry.getSingleMetricAsString(
      'tessera_federation_fetches_total',
    );
    assert.match(
      metric,
      /^tessera_federation_fetches_total\{trust_domain="c\.test",outcome="updated"\} 1$/m,
    );
  } finally {
    await d.close();
    stopC.abort();
    await runningC;
  }
});
