// `tessera federation ...` and `tessera bundle set|list|delete` against a real server, with a
// foreign trust domain's https_spiffe bundle endpoint on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type ForeignDomain,
  type TestEndpoint,
  bundleJson,
  foreignDomain,
  startEndpoint,
} from '../../server/federation/testing/bundle-endpoint.ts';
import { startTestServer, type TestServer } from '../testing/harness.ts';

const TD = 'remote.test';
const ENDPOINT_ID = `spiffe://${TD}/spire/server`;
let s: TestServer;
let remote: ForeignDomain;
let ep: TestEndpoint;
let dir = '';
let caFile = '';

before(async () => {
  s = await startTestServer();
  remote = await foreignDomain(TD, Date.now());
  ep = await startEndpoint(remote, ENDPOINT_ID, Date.now());
  ep.routes.set('/bundle', (_req, res) => res.end(bundleJson(remote.bundle(7, 600))));
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-fed-cli-'));
  caFile = path.join(dir, 'remote-ca.pem');
  writeFileSync(caFile, remote.caPem);
});
after(async () => {
  await ep.close();
  await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

describe('federation', () => {
  test('create → list → refresh → update → delete, with clear refusals', async () => {
    const url = ep.url('/bundle');
    const spec = ['--trust-domain', TD, '--bundle-endpoint-url', url, '--profile', 'https_spiffe'];

    const noBundle = await s.cli(
      'federation',
      'create',
      ...spec,
      '--endpoint-spiffe-id',
      ENDPOINT_ID,
    );
    assert.equal(noBundle.code, 2, noBundle.stderr);
    assert.match(noBundle.stderr, /trust_bundle: required for https_spiffe/);

    const noId = await s.cli('federation', 'create', ...spec, '--trust-bundle', caFile);
    assert.equal(noId.code, 2);
    assert.match(noId.stderr, /endpoint_spiffe_id: required for the https_spiffe profile/);

    const plain = await s.cli(
      'federation',
      'create',
      '--trust-domain',
      TD,
      '--bundle-endpoint-url',
      'http://remote.test/bundle',
      '--profile',
      'https_web',
    );
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /bundle_endpoint_url: must be an https:\/\/ URL/);

    const own = await s.cli(
      'federation',
      'create',
      '--trust-domain',
      'example.org',
      '--bundle-endpoint-url',
      url,
      '--profile',
      'https_web',
    );
    assert.equal(own.code, 2);
    assert.match(own.stderr, /this server's own trust domain/);

    const created = await s.cli(
      'federation',
      'create',
      ...spec,
      '--endpoint-spiffe-id',
      ENDPOINT_ID,
      '--trust-bundle',
      caFile,
      '--output',
      'json',
    );
    assert.equal(created.code, 0, created.stderr);
    const c = json(created.stdout);
    assert.equal(c.trustDomain, TD);
    assert.equal(c.profile, 'https_spiffe');
    assert.equal(c.source, 'api');
    assert.equal(c.bundleSequence, 0, 'the PEM trust bundle is stored with sequence 0');
    assert.equal(c.lastFetchAt, null);

    const dup = await s.cli('federation', 'create', ...spec, '--endpoint-spiffe-id', ENDPOINT_ID);
    assert.equal(dup.code, 4);

    const table = await s.cli('federation', 'list');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^TRUST DOMAIN +PROFILE +BUNDLE ENDPOINT URL +SOURCE/);
    assert.match(
      table.stdout,
      /^remote\.test +https_spiffe +https:\/\/localhost:\d+\/bundle +api/m,
    );

    const refreshed = await s.cli('federation', 'refresh', '--trust-domain', TD);
    assert.equal(refreshed.code, 0, refreshed.stderr);
    // The server's own poll may have fetched it first (a new relationship is due at once).
    assert.match(refreshed.stdout, /^bundle of remote\.test (updated|unchanged) \(sequence 7\)\n$/);
    const shown = json(
      (await s.cli('federation', 'show', '--trust-domain', TD, '--output', 'json')).stdout,
    );
    assert.equal(shown.bundleSequence, 7);
    assert.equal(shown.failures, 0);
    assert.equal(typeof shown.lastSuccessAt, 'string');
    const fields = await s.cli('federation', 'show', '--trust-domain', TD);
    assert.match(fields.stdout, /^Endpoint SPIFFE ID: +spiffe:\/\/remote\.test\/spire\/server$/m);

    const keep = await s.cli('bundle', 'delete', '--trust-domain', TD);
    assert.equal(keep.code, 7, 'the bundle authenticates the https_spiffe endpoint');
    assert.match(keep.stderr, /delete the federation relationship first/);

    // https_web: the test CA is not a public one, so the fetch fails and says why.
    const upd = await s.cli(
      'federation',
      'update',
      '--trust-domain',
      TD,
      '--profile',
      'https_web',
      '--output',
      'json',
    );
    assert.equal(upd.code, 0, upd.stderr);
    const u = json(upd.stdout);
    assert.equal(u.profile, 'https_web');
    assert.equal(u.endpointSpiffeId, '');
    assert.equal(u.bundleEndpointUrl, url);
    const failed = await s.cli('federation', 'refresh', '--trust-domain', TD, '--output', 'json');
    assert.equal(failed.code, 6);
    assert.match(
      failed.stderr,
      /^error: fetching the bundle of remote\.test failed: TLS connection/,
    );
    const f = json(failed.stdout);
    assert.equal(f.ok, false);
    assert.ok((f.relationship as { failures: number }).failures >= 1);

    const audit = json(
      (await s.cli('audit', 'list', '--action', 'federation.update', '--output', 'json')).stdout,
    ) as { records: { target: string; actor: string }[] };
    assert.deepEqual(
      audit.records.map((r) => [r.target, r.actor]),
      [[TD, 'local-admin']],
    );

    const del = await s.cli('federation', 'delete', '--trust-domain', TD);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'federation relationship with remote.test deleted\n');
    assert.equal((await s.cli('federation', 'show', '--trust-domain', TD)).code, 3);
    assert.deepEqual(json((await s.cli('federation', 'list', '--output', 'json')).stdout), {
      relationships: [],
    });
  });
});

describe('bundle set|list|delete', () => {
  test('sets SPIFFE JSON and PEM bundles, lists them, deletes them; own trust domain refused', async () => {
    const other = await foreignDomain('other.test', Date.now());
    const jsonFile = path.join(dir, 'other.json');
    writeFileSync(jsonFile, bundleJson(other.bundle(42, 60)));
    const set = await s.cli('bundle', 'set', '--trust-domain', 'other.test', '--file', jsonFile);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(
      set.stdout,
      'bundle of other.test set (sequence 42, 1 X.509 authorities, 0 JWT authorities)\n',
    );
    const pemFile = path.join(dir, 'third.pem');
    const third = await foreignDomain('third.test', Date.now());
    writeFileSync(pemFile, third.caPem);
    const pem = await s.cli(
      'bundle',
      'set',
      '--trust-domain',
      'third.test',
      '--file',
      pemFile,
      '--output',
      'json',
    );
    assert.equal(pem.code, 0, pem.stderr);
    assert.equal(json(pem.stdout).sequence, 0);

    const wrongTd = await s.cli('bundle', 'set', '--trust-domain', 'nope.test', '--file', pemFile);
    assert.equal(wrongTd.code, 2);
    assert.match(wrongTd.stderr, /belongs to trust domain "third\.test", not "nope\.test"/);
    const own = await s.cli('bundle', 'set', '--trust-domain', 'example.org', '--file', pemFile);
    assert.equal(own.code, 2);
    assert.match(own.stderr, /own trust domain/);
    const garbage = path.join(dir, 'garbage.txt');
    writeFileSync(garbage, 'hello');
    const bad = await s.cli('bundle', 'set', '--trust-domain', 'x.test', '--file', garbage);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /neither a SPIFFE bundle \(JSON\) nor PEM/);

    const list = await s.cli('bundle', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /^TRUST DOMAIN +SEQUENCE +X509 AUTHORITIES +JWT AUTHORITIES +REFRESH HINT$/m,
    );
    assert.match(list.stdout, /^other\.test +42 +1 +0 +60s$/m);
    assert.doesNotMatch(list.stdout, /example\.org/, 'the own bundle is not federated');
    const lj = json((await s.cli('bundle', 'list', '--output', 'json')).stdout) as {
      bundles: { trustDomain: string }[];
    };
    const tds = lj.bundles.map((b) => b.trustDomain);
    assert.ok(tds.includes('other.test') && tds.includes('third.test'), tds.join());
    assert.ok(!tds.includes('example.org'));

    const del = await s.cli('bundle', 'delete', '--trust-domain', 'other.test');
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await s.cli('bundle', 'delete', '--trust-domain', 'other.test')).code, 3);
    const audit = json(
      (await s.cli('audit', 'list', '--action', 'federation.bundle.set', '--output', 'json'))
        .stdout,
    ) as { records: { target: string }[] };
    assert.deepEqual(
      audit.records.map((r) => r.target),
      ['other.test', 'third.test'],
    );
  });
});
