import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { TesseraError } from '../../core/errors.ts';
import { Backoff } from './backoff.ts';
import {
  FakeWorkloadApi,
  makeAuthority,
  mintSvid,
  svidMessage,
  type TestAuthority,
} from './testing/fake-workload-api.ts';
import type { X509Context } from './types.ts';
import { pickByHint, X509Source } from './x509-source.ts';

let api: FakeWorkloadApi;
let td: TestAuthority;
const fast = { initialMs: 5, maxMs: 40 };

before(async () => {
  td = await makeAuthority('example.org');
  api = new FakeWorkloadApi();
  await api.start();
  api.x509 = {
    svids: [
      ...svidMessage(td, await mintSvid(td, 'spiffe://example.org/web'), 'web'),
      ...svidMessage(td, await mintSvid(td, 'spiffe://example.org/admin'), 'admin'),
    ],
  };
});
after(() => api.dispose());

/** Resolves with the next update, or rejects after `ms`. */
function nextUpdate(src: X509Source, ms = 5000): Promise<X509Context> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error('no update in time'));
    }, ms);
    const off = src.onUpdate((ctx) => {
      clearTimeout(t);
      off();
      resolve(ctx);
    });
  });
}

test('backoff grows exponentially with jitter, is capped and resets', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 1 });
  assert.deepEqual(
    [b.next(), b.next(), b.next(), b.next(), b.next(), b.next()],
    [100, 200, 400, 800, 1000, 1000],
  );
  b.reset();
  assert.equal(b.next(), 100);
  const low = new Backoff({ initialMs: 100, jitter: 0.5, random: () => 0 });
  assert.equal(low.next(), 50);
});

test('source: default SVID is the first, picker by hint, bundles by trust domain', async () => {
  const src = await X509Source.open({ address: api.uri, backoff: fast, timeoutMs: 5000 });
  const admin = new X509Source({ address: api.uri, picker: pickByHint('admin'), backoff: fast });
  try {
    assert.equal(src.getX509Svid().spiffeId, 'spiffe://example.org/web');
    assert.equal(src.getX509Svids().length, 2);
    assert.deepEqual(src.getX509BundleForTrustDomain('spiffe://example.org'), [td.caDer]);
    assert.deepEqual(src.getX509BundleForTrustDomain('example.org'), [td.caDer]);
    assert.equal(src.getX509BundleForTrustDomain('other.org'), undefined);
    await admin.ready();
    assert.equal(admin.getX509Svid().spiffeId, 'spiffe://example.org/admin');
  } finally {
    await src.close();
    await admin.close();
  }
  assert.throws(() => src.getX509Svid(), /closed/);
  await assert.rejects(
    admin.ready().then(() => Promise.reject(new Error('x'))),
    /x/,
  );
});

test('source follows a rotation: onUpdate fires with the new certificate', async () => {
  const src = await X509Source.open({ address: api.uri, backoff: fast, timeoutMs: 5000 });
  const saved = api.x509;
  try {
    const before = src.getX509Svid();
    const rotated = await mintSvid(td, 'spiffe://example.org/web');
    const update = nextUpdate(src);
    api.x509 = { svids: svidMessage(td, rotated, 'web') };
    api.push();
    const ctx = await update;
    assert.equal(ctx.svids.length, 1);
    const after = src.getX509Svid();
    assert.notEqual(after.certificates[0]!.serialNumber, before.certificates[0]!.serialNumber);
    assert.deepEqual(after.chainDer[0], rotated.chainDer);
  } finally {
    api.x509 = saved;
    await src.close();
  }
});

test('source reconnects after a dropped stream and after Unavailable/PermissionDenied', async () => {
  const src = await X509Source.open({ address: api.uri, backoff: fast, timeoutMs: 5000 });
  const errors: string[] = [];
  src.onError((e) => errors.push(e.code));
  try {
    api.failures.set('x509', { code: Code.Unavailable, count: 1 });
    const again = nextUpdate(src);
    api.dropStreams();
    await again;
    const again2 = nextUpdate(src);
    api.failures.set('x509', { code: Code.PermissionDenied, count: 2 });
    api.dropStreams();
    await again2;
    assert.deepEqual(errors, [
      'unavailable',
      'unavailable',
      'unavailable',
      'permission_denied',
      'permission_denied',
    ]);
    assert.equal(src.getX509Svid().spiffeId, 'spiffe://example.org/web');
  } finally {
    await src.close();
  }
});

test('source reconnects after the server is stopped and restarted on the same socket', async () => {
  const delays: number[] = [];
  const src = await X509Source.open({
    address: api.uri,
    backoff: { ...fast, random: () => 1 },
    timeoutMs: 5000,
    sleep: (ms, signal) => {
      delays.push(ms);
      return new Promise((r) => {
        const t = setTimeout(r, ms);
        signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    },
  });
  try {
    await api.stop();
    // Let a few reconnect attempts fail while the socket is gone.
    for (let i = 0; i < 100 && delays.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(delays.length >= 3, `expected retries, got ${delays.length}`);
    assert.deepEqual(delays.slice(0, 3), [5, 10, 20]);
    const back = nextUpdate(src);
    await api.start();
    await back;
    assert.equal(src.getX509Svid().spiffeId, 'spiffe://example.org/web');
  } finally {
    await src.close();
  }
});

test('source stops on InvalidArgument: ready rejects, no retry', async () => {
  api.failures.set('x509', { code: Code.InvalidArgument, count: 1 });
  const calls = api.calls.length;
  const src = new X509Source({ address: api.uri, backoff: fast });
  try {
    await assert.rejects(
      src.ready(),
      (e: unknown) => e instanceof TesseraError && e.code === 'invalid_argument',
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(api.calls.length, calls + 1);
  } finally {
    await src.close();
  }
});

test('source stops on Unimplemented', async () => {
  api.failures.set('x509', { code: Code.Unimplemented, count: 1 });
  const src = new X509Source({ address: api.uri, backoff: fast });
  try {
    await assert.rejects(
      src.ready(),
      (e: unknown) => e instanceof TesseraError && e.code === 'unimplemented',
    );
  } finally {
    await src.close();
  }
});

test('open() times out and closes when nothing answers', async () => {
  const started = Date.now();
  await assert.rejects(
    X509Source.open({ address: `unix://${api.dir}/missing.sock`, backoff: fast, timeoutMs: 200 }),
    /within 200 ms/,
  );
  assert.ok(Date.now() - started < 3000);
});
