// Interop: the fetcher against a real Tessera server's own https_spiffe bundle endpoint (the
// HTTP/2-only mTLS API listener, server SVID spiffe://<td>/spire/server).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { initialFederationStatus } from '../../core/federation.ts';
import { openStore } from '../../store/open.ts';
import { Auditor } from '../audit/auditor.ts';
import { loadServerConfig, systemClock, TesseraServer } from '../compose.ts';
import { FederationManager } from './federation-manager.ts';

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
