import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { TesseraError } from '../../core/errors.ts';
import {
  FakeWorkloadApi,
  jwksOf,
  makeAuthority,
  mintJwt,
  mintSvid,
  svidMessage,
  type TestAuthority,
} from './testing/fake-workload-api.ts';
import { leaveStaleSocket } from '../../../test/helpers/stale-socket.ts';
import { WorkloadClient } from './workload-client.ts';

let api: FakeWorkloadApi;
let td: TestAuthority;
let fed: TestAuthority;

before(async () => {
  td = await makeAuthority('example.org');
  fed = await makeAuthority('partner.test');
  api = new FakeWorkloadApi();
  await api.start();
  const a = await mintSvid(td, 'spiffe://example.org/web');
  const b = await mintSvid(td, 'spiffe://example.org/db');
  api.x509 = {
    svids: [...svidMessage(td, a, 'web'), ...svidMessage(td, b, 'db')],
    federatedBundles: { 'spiffe://partner.test': fed.caDer },
  };
  api.x509Bundles = { 'spiffe://example.org': td.caDer, 'spiffe://partner.test': fed.caDer };
  api.jwtBundles = jwksOf(td, fed);
  api.mintJwt = async (aud, id) => [
    {
      spiffeId: id || 'spiffe://example.org/web',
      svid: await mintJwt(td, id || 'spiffe://example.org/web', aud),
    },
  ];
});
after(() => api.dispose());

test('fetchX509Context: typed SVIDs (default first), own and federated bundles, header sent', async () => {
  const c = new WorkloadClient({ address: api.uri });
  try {
    const ctx = await c.fetchX509Context({ timeoutMs: 5000 });
    assert.equal(ctx.svids.length, 2);
    const svid = ctx.svids[0]!;
    assert.equal(svid.spiffeId, 'spiffe://example.org/web');
    assert.equal(svid.hint, 'web');
    assert.equal(svid.chainDer.length, 1);
    assert.equal(svid.certificates[0]!.checkPrivateKey(svid.privateKey), true);
    assert.ok(svid.expiresAt > Date.now());
    assert.deepEqual([...ctx.bundles.keys()].sort(), ['example.org', 'partner.test']);
    assert.deepEqual(ctx.bundles.get('example.org'), [td.caDer]);
    assert.ok(api.headers.length > 0 && api.headers.every((h) => h === 'true'));
  } finally {
    c.close();
  }
});

test('bundles: concatenated DER is split; JWKS → keys by kid', async () => {
  const c = new WorkloadClient({ env: api.uri });
  try {
    const saved = api.x509Bundles;
    api.x509Bundles = {
      'spiffe://example.org': Buffer.concat([td.caDer, fed.caDer]),
    };
    const x = await c.fetchX509Bundles({ timeoutMs: 5000 });
    assert.equal(x.get('example.org')?.length, 2);
    api.x509Bundles = saved;
    const j = await c.fetchJWTBundles({ timeoutMs: 5000 });
    assert.ok(j.get('example.org')?.get(td.kid));
    assert.ok(j.get('partner.test')?.get(fed.kid));
  } finally {
    c.close();
  }
});

test('fetchJWTSVID and validateJWTSVID', async () => {
  const c = new WorkloadClient({ address: api.uri });
  try {
    const s = await c.fetchJWTSVID({ audience: 'svc-b' });
    assert.equal(s.spiffeId, 'spiffe://example.org/web');
    assert.deepEqual(s.audience, ['svc-b']);
    assert.ok(s.expiresAt > Date.now());
    const v = await c.validateJWTSVID(s.token, 'svc-b');
    assert.equal(v.spiffeId, 'spiffe://example.org/web');
    await assert.rejects(c.fetchJWTSVID({ audience: [] }), /audience/);
    await assert.rejects(c.validateJWTSVID(s.token, 'other'), (e: unknown) => {
      return e instanceof TesseraError && e.code === 'invalid_argument';
    });
  } finally {
    c.close();
  }
});

test('gRPC errors become Tessera errors with the matching code', async () => {
  const c = new WorkloadClient({ address: api.uri });
  try {
    api.failures.set('x509', { code: Code.PermissionDenied, count: 1 });
    await assert.rejects(c.fetchX509Context({ timeoutMs: 5000 }), (e: unknown) => {
      return e instanceof TesseraError && e.code === 'permission_denied';
    });
    api.failures.set('jwt', { code: Code.Unavailable, count: 1 });
    await assert.rejects(c.fetchJWTSVID({ audience: 'a' }), (e: unknown) => {
      return e instanceof TesseraError && e.code === 'unavailable';
    });
  } finally {
    c.close();
  }
});

test('a malformed response is reported, not used', async () => {
  const c = new WorkloadClient({ address: api.uri });
  const saved = api.x509;
  try {
    api.x509 = { svids: [] };
    await assert.rejects(c.fetchX509Context({ timeoutMs: 5000 }), /no SVIDs/);
    api.x509 = { svids: [{ ...saved.svids![0]!, spiffeId: 'spiffe://example.org/other' }] };
    await assert.rejects(c.fetchX509Context({ timeoutMs: 5000 }), /does not match spiffe_id/);
    const other = await mintSvid(td, 'spiffe://example.org/web');
    api.x509 = { svids: [{ ...saved.svids![0]!, x509SvidKey: other.pkcs8 }] };
    await assert.rejects(c.fetchX509Context({ timeoutMs: 5000 }), /private key does not match/);
  } finally {
    api.x509 = saved;
    c.close();
  }
});

test('no server: fetch fails as unavailable', async () => {
  const c = new WorkloadClient({ address: `unix://${api.dir}/nothing.sock` });
  try {
    await assert.rejects(c.fetchX509Context({ timeoutMs: 5000 }), (e: unknown) => {
      return e instanceof TesseraError && e.code === 'unavailable';
    });
  } finally {
    c.close();
  }
});

test('no agent: a missing socket file and a socket file nobody listens on are told apart', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-noagent-'));
  try {
    const missing = path.join(dir, 'missing.sock');
    const stale = path.join(dir, 'stale.sock');
    await leaveStaleSocket(stale);
    for (const [socket, why] of [
      [missing, 'there is no socket file'],
      [stale, 'the socket file exists, but nothing accepts connections'],
    ] as const) {
      const c = new WorkloadClient({ address: `unix://${socket}` });
      for (const call of [
        () => c.fetchX509Context({ timeoutMs: 30_000 }),
        () => c.fetchJWTSVID({ audience: 'db' }, { timeoutMs: 30_000 }),
      ]) {
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof TesseraError);
          assert.equal(e.code, 'unavailable');
          assert.equal(e.message, `Workload API: no agent is listening on ${socket} (${why})`);
          return true;
        });
      }
      c.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
