// The bundle fetcher and its schedule against local HTTPS endpoints on 127.0.0.1 (a test CA per
// foreign trust domain), with a real SQLite store and a ManualClock for the schedule.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { Bundle } from '../../core/bundle.ts';
import { ManualClock } from '../../core/clock.ts';
import {
  type FederationRelationship,
  defaultPollPolicy,
  initialFederationStatus,
} from '../../core/federation.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import { FederationManager, type RefreshResult } from './federation-manager.ts';
import {
  type ForeignDomain,
  type TestEndpoint,
  bundleJson,
  foreignDomain,
  startEndpoint,
} from './testing/bundle-endpoint.ts';

const REAL_NOW = Date.now();
const TD = 'remote.test';
const ENDPOINT_ID = `spiffe://${TD}/spire/server`;
const quiet = { warn: () => {}, info: () => {} };

let dir = '';
let remote: ForeignDomain;
let stranger: ForeignDomain;
let ep: TestEndpoint;
let store: Store;
let clock: ManualClock;
let n = 0;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-fed-'));
  remote = await foreignDomain(TD, REAL_NOW);
  stranger = await foreignDomain('other.test', REAL_NOW);
  ep = await startEndpoint(remote, ENDPOINT_ID, REAL_NOW);
});
after(async () => {
  await ep.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  clock = new ManualClock(REAL_NOW);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, `s${n++}.db`) }, clock);
  ep.routes.clear();
  ep.hits.length = 0;
});
afterEach(() => store.close());

function serve(pathName: string, body: string, status = 200): void {
  ep.routes.set(pathName, (_req, res) => {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
}

function manager(extra: Partial<ConstructorParameters<typeof FederationManager>[0]> = {}) {
  const updated: string[] = [];
  const m = new FederationManager({
    store,
    auditor: new Auditor(clock, store),
    clock,
    log: quiet,
    extraCaPem: [remote.caPem],
    random: () => 1,
    ...extra,
  });
  m.onBundleUpdated((td) => updated.push(td));
  return { m, updated };
}

async function relate(over: Partial<FederationRelationship> = {}): Promise<FederationRelationship> {
  return store.federations.create({
    trustDomain: TD,
    bundleEndpointUrl: ep.url('/bundle'),
    profile: 'https_web',
    endpointSpiffeId: '',
    source: 'api',
    createdAt: clock.now(),
    updatedAt: clock.now(),
    status: initialFederationStatus,
    ...over,
  });
}

const spiffeRel = { profile: 'https_spiffe' as const, endpointSpiffeId: ENDPOINT_ID };

function failed(r: RefreshResult): string {
  assert.equal(r.ok, false, 'the fetch should have failed');
  return r.ok ? '' : r.error;
}

async function stored(): Promise<Bundle | null> {
  return store.bundles.get(TD);
}

describe('https_web', () => {
  it('fetches, stores, audits, tells the hook and schedules at the refresh hint', async () => {
    serve('/bundle', bundleJson(remote.bundle(3, 60)));
    await relate();
    const { m, updated } = manager();
    const r = await m.refresh(TD);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.updated, true);
    assert.deepEqual(await stored(), remote.bundle(3, 60));
    assert.deepEqual(updated, [TD]);
    const audit = await store.audit.list({ action: 'federation.bundle.updated' }, 10);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.target, TD);
    assert.equal(audit[0]?.details.sequence, 3);
    const status = (await store.federations.get(TD))?.status;
    assert.deepEqual(status, {
      lastFetchAt: REAL_NOW,
      lastSuccessAt: REAL_NOW,
      lastError: '',
      nextAttemptAt: REAL_NOW + 60_000,
      failures: 0,
    });
    // The same document again: no change, no audit, no hook.
    const again = await m.refresh(TD);
    assert.ok(again.ok);
    assert.equal(again.updated, false);
    assert.deepEqual(updated, [TD]);
    assert.equal((await store.audit.list({ action: 'federation.bundle.updated' }, 10)).length, 1);
  });

  it('refuses an endpoint whose certificate does not chain to a trusted CA', async () => {
    serve('/bundle', bundleJson(remote.bundle(1)));
    await relate();
    const { m, updated } = manager({ extraCaPem: [stranger.caPem] });
    assert.match(failed(await m.refresh(TD)), /^TLS connection to localhost:\d+ failed: /);
    assert.equal(await stored(), null);
    assert.deepEqual(updated, []);
    const status = (await store.federations.get(TD))?.status;
    assert.equal(status?.failures, 1);
    assert.match(status?.lastError ?? '', /TLS connection/);
  });

  it('refuses a bundle whose authorities belong to another trust domain', async () => {
    serve('/bundle', bundleJson({ ...stranger.bundle(1), trustDomain: TD }));
    await relate();
    const { m } = manager();
    assert.match(
      failed(await m.refresh(TD)),
      /X\.509 authority #1 belongs to trust domain "other\.test", not "remote\.test"/,
    );
    assert.equal(await stored(), null);
  });

  it('treats a non-200 answer and a malformed document as failures', async () => {
    serve('/bundle', 'nope', 500);
    await relate();
    const { m } = manager();
    assert.match(failed(await m.refresh(TD)), /HTTP 500/);
    serve('/bundle', '{"keys": 5}');
    assert.match(failed(await m.refresh(TD)), /invalid SPIFFE bundle: "keys"/);
  });
});

describe('https_spiffe', () => {
  it('authenticates the endpoint with the stored bundle and its SPIFFE ID', async () => {
    await store.bundles.put(remote.bundle(1));
    serve('/bundle', bundleJson(remote.bundle(2, 120)));
    await relate(spiffeRel);
    const { m, updated } = manager({ extraCaPem: [] });
    const r = await m.refresh(TD);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal((await stored())?.sequence, 2);
    assert.deepEqual(updated, [TD]);
  });

  it("speaks HTTP/2 to an endpoint that only offers h2 (like Tessera's API listener)", async () => {
    const h2 = await startEndpoint(remote, ENDPOINT_ID, REAL_NOW, { h2Only: true });
    try {
      h2.routes.set('/bundle', (_req, res) => res.end(bundleJson(remote.bundle(4))));
      await store.bundles.put(remote.bundle(1));
      await relate({ ...spiffeRel, bundleEndpointUrl: h2.url('/bundle') });
      const r = await manager().m.refresh(TD);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal((await stored())?.sequence, 4);
      h2.routes.set('/bundle', (_req, res) => res.end('x'.repeat(2 * 1024 * 1024)));
      assert.match(failed(await manager().m.refresh(TD)), /larger than 1048576 bytes/);
    } finally {
      await h2.close();
    }
  });

  it('refuses an endpoint presenting another SPIFFE ID', async () => {
    await store.bundles.put(remote.bundle(1));
    serve('/bundle', bundleJson(remote.bundle(2)));
    await relate({ profile: 'https_spiffe', endpointSpiffeId: `spiffe://${TD}/other` });
    const { m } = manager();
    assert.match(
      failed(await m.refresh(TD)),
      /endpoint presented SPIFFE ID "spiffe:\/\/remote\.test\/spire\/server", expected "spiffe:\/\/remote\.test\/other"/,
    );
    assert.equal((await stored())?.sequence, 1);
  });

  it('refuses an endpoint whose SVID does not chain to the stored bundle', async () => {
    await store.bundles.put({ ...stranger.bundle(1), trustDomain: TD });
    serve('/bundle', bundleJson(remote.bundle(2)));
    await relate(spiffeRel);
    const { m } = manager();
    assert.match(failed(await m.refresh(TD)), /not a valid X509-SVID: certificate chain/);
    assert.equal(ep.hits.length, 0, 'no request is sent to an unauthenticated endpoint');
  });

  it('needs an initial bundle', async () => {
    await relate(spiffeRel);
    const { m } = manager();
    assert.match(failed(await m.refresh(TD)), /no X\.509 bundle stored for "remote\.test"/);
  });
});

describe('sequence, redirects and bounds', () => {
  it('never replaces a stored bundle with one of lower spiffe_sequence', async () => {
    const newer = { ...remote.bundle(10), refreshHint: 999 };
    await store.bundles.put(newer);
    serve('/bundle', bundleJson(remote.bundle(5)));
    await relate();
    const { m, updated } = manager();
    const r = await m.refresh(TD);
    assert.ok(r.ok);
    assert.equal(r.ignoredLowerSequence, true);
    assert.equal(r.updated, false);
    assert.deepEqual(await stored(), newer);
    assert.deepEqual(updated, []);
  });

  it('follows temporary and permanent redirects without storing the new URL', async () => {
    for (const [i, status] of [302, 303, 307, 301, 308].entries()) {
      ep.routes.set('/old', (_req, res) => {
        res.statusCode = status;
        res.setHeader('location', '/bundle');
        res.end('');
      });
      serve('/bundle', bundleJson(remote.bundle(i + 1)));
      await store.federations.delete(TD).catch(() => undefined);
      await relate({ bundleEndpointUrl: ep.url('/old') });
      const { m } = manager();
      const r = await m.refresh(TD);
      assert.ok(r.ok, `${status}: ${JSON.stringify(r)}`);
      assert.equal((await stored())?.sequence, i + 1);
      assert.equal((await store.federations.get(TD))?.bundleEndpointUrl, ep.url('/old'));
    }
  });

  it('bounds the number of redirects and refuses a redirect away from https', async () => {
    ep.routes.set('/loop', (_req, res) => {
      res.statusCode = 307;
      res.setHeader('location', '/loop');
      res.end('');
    });
    ep.routes.set('/plain', (_req, res) => {
      res.statusCode = 302;
      res.setHeader('location', `http://localhost:${ep.port}/bundle`);
      res.end('');
    });
    await relate({ bundleEndpointUrl: ep.url('/loop') });
    const { m } = manager();
    assert.match(failed(await m.refresh(TD)), /more than 3 redirects/);
    assert.equal(ep.hits.filter((h) => h === '/loop').length, 4);
    await store.federations.update({
      ...(await relate({ trustDomain: 'x.test' })),
      trustDomain: TD,
      bundleEndpointUrl: ep.url('/plain'),
      updatedAt: clock.now(),
    });
    assert.match(failed(await m.refresh(TD)), /non-https URL/);
  });

  it('refuses an oversize response, declared or streamed', async () => {
    const big = JSON.stringify({ keys: [], pad: 'x'.repeat(1024 * 1024) });
    serve('/bundle', big);
    ep.routes.set('/chunked', (_req, res) => {
      res.statusCode = 200;
      for (let i = 0; i < 40; i++) res.write('x'.repeat(64 * 1024));
      res.end('');
    });
    await relate();
    const { m } = manager();
    assert.match(failed(await m.refresh(TD)), /larger than 1048576 bytes/);
    await store.federations.update({
      trustDomain: TD,
      bundleEndpointUrl: ep.url('/chunked'),
      profile: 'https_web',
      endpointSpiffeId: '',
      source: 'api',
      updatedAt: clock.now(),
    });
    assert.match(failed(await m.refresh(TD)), /larger than 1048576 bytes/);
    assert.equal(await stored(), null);
  });

  it('gives up on a slow endpoint at the time bound', async () => {
    ep.routes.set('/slow', (_req, res) => {
      setTimeout(() => res.end(bundleJson(remote.bundle(1))), 5_000).unref();
    });
    await relate({ bundleEndpointUrl: ep.url('/slow') });
    const { m } = manager({ limits: { timeoutMs: 300, maxBytes: 1 << 20, maxRedirects: 3 } });
    const started = Date.now();
    assert.match(failed(await m.refresh(TD)), /did not answer within 300 ms/);
    assert.ok(Date.now() - started < 3_000);
  });
});

describe('schedule', () => {
  async function closedPortUrl(): Promise<string> {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    return `https://127.0.0.1:${port}/bundle`;
  }

  it('backs off exponentially after failures, capped at the poll interval, with jitter', async () => {
    await relate({ bundleEndpointUrl: await closedPortUrl() });
    const { m } = manager();
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      await m.pollDue();
      const s = (await store.federations.get(TD))!.status;
      assert.equal(s.failures, i + 1);
      assert.equal(s.lastFetchAt, clock.now());
      delays.push(s.nextAttemptAt - clock.now());
      // Not yet due: nothing is attempted.
      clock.advance(s.nextAttemptAt - clock.now() - 1);
      await m.pollDue();
      assert.equal((await store.federations.get(TD))!.status.failures, i + 1);
      clock.advance(1);
    }
    assert.deepEqual(
      delays,
      [5, 10, 20, 40, 80, 160, 300, 300, 300, 300].map((s) => s * 1000),
    );
    // Jitter: the delay is between half and all of the exponential step.
    const { m: low } = manager({ random: () => 0 });
    await low.refresh(TD);
    const s = (await store.federations.get(TD))!.status;
    assert.equal(s.nextAttemptAt - clock.now(), 150_000);
  });

  it('polls again at the refresh hint, clamped to the policy bounds', async () => {
    serve('/bundle', bundleJson(remote.bundle(1, 30)));
    await relate();
    const { m } = manager();
    await m.pollDue();
    assert.equal(ep.hits.length, 1);
    clock.advance(29_999);
    await m.pollDue();
    assert.equal(ep.hits.length, 1, 'not before the hint');
    clock.advance(1);
    serve('/bundle', bundleJson(remote.bundle(2, 1)));
    await m.pollDue();
    assert.equal(ep.hits.length, 2);
    assert.equal((await stored())?.sequence, 2);
    const next = (await store.federations.get(TD))!.status.nextAttemptAt;
    assert.equal(next - clock.now(), defaultPollPolicy.minIntervalMs, 'a 1 s hint is raised');
    clock.advance(defaultPollPolicy.minIntervalMs);
    serve('/bundle', bundleJson(remote.bundle(3, 10 * 86_400)));
    await m.pollDue();
    const capped = (await store.federations.get(TD))!.status.nextAttemptAt;
    assert.equal(capped - clock.now(), defaultPollPolicy.maxIntervalMs, 'a 10 day hint is capped');
  });

  it('a success resets the failure count', async () => {
    await relate({ status: { ...initialFederationStatus, failures: 4, lastError: 'x' } });
    serve('/bundle', bundleJson(remote.bundle(1)));
    const { m } = manager();
    await m.pollDue();
    const s = (await store.federations.get(TD))!.status;
    assert.equal(s.failures, 0);
    assert.equal(s.lastError, '');
  });
});

describe('several servers on one datastore', () => {
  it("reports bundles changed by another server's fetch or admin call, once", async () => {
    serve('/bundle', bundleJson(remote.bundle(1)));
    await relate();
    const { m: here, updated: hereUpdated } = manager({ trustDomain: 'example.org' });
    const { m: there, updated: thereUpdated } = manager({ trustDomain: 'example.org' });
    await store.bundles.put({ ...stranger.bundle(1), trustDomain: 'example.org' });
    await there.watchStore(); // baseline: nothing reported
    await here.watchStore();
    await here.tick(); // fetches (due at once); the watch is not due yet
    assert.deepEqual(hereUpdated, [TD]);
    assert.deepEqual(thereUpdated, []);
    clock.advance(4_999);
    await there.watchStore();
    assert.deepEqual(thereUpdated, [], 'at most every watch interval');
    clock.advance(1);
    await there.watchStore();
    await here.watchStore();
    assert.deepEqual(thereUpdated, [TD], 'the other server learns of the fetched bundle');
    assert.deepEqual(hereUpdated, [TD], 'the fetching server does not report it twice');
    // The own trust domain's bundle is not federated: its changes are not reported.
    await store.bundles.put({ ...stranger.bundle(2), trustDomain: 'example.org' });
    await store.bundles.delete(TD);
    clock.advance(5_000);
    await there.watchStore();
    assert.deepEqual(thereUpdated, [TD, TD], 'a deletion is reported');
    clock.advance(5_000);
    await there.watchStore();
    assert.deepEqual(thereUpdated, [TD, TD], 'nothing changed since');
  });
});
