// The Workload API on the wire, driven by a plain grpc-js client that knows only
// proto/spiffe/workload.proto (as every SPIFFE client does), against the spec rules of
// spiffe.md §1–2.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import type { StaticEntry } from './static-identity-source.ts';
import {
  FED_TD,
  TD,
  makePki,
  openStream,
  securityHeader,
  sleep,
  splitDer,
  startOnTempSocket,
  unary,
  workloadClient,
  type GrpcClient,
  type Pki,
  type Running,
} from './testing/fixtures.ts';

interface WireSvid {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}
interface X509SvidMsg {
  svids: WireSvid[];
  crl: Buffer[];
  federated_bundles: Record<string, Buffer>;
}
interface BundlesMsg {
  bundles: Record<string, Buffer>;
}

const QUIET_MS = 300; // how long "no further message" is watched for

async function rejectsWith(p: Promise<unknown>, code: number, details?: RegExp): Promise<void> {
  await assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code, `expected status ${code}, got ${e.code}: ${e.details}`);
    if (details) assert.match(e.details, details);
    return true;
  });
}

describe('SpiffeWorkloadAPI over gRPC (grpc-js client)', () => {
  let pki: Pki;
  let run: Running;
  let client: GrpcClient;
  let baseEntries: StaticEntry[];

  before(async () => {
    pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/web`, 'e1', 'web') },
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/db`, 'e2', 'db') },
    ]);
    baseEntries = [...pki.source.state.entries];
    run = await startOnTempSocket(pki.source);
    client = workloadClient(run.socketPath);
  });
  after(async () => {
    client.close();
    await run.stop();
  });
  const resetEntries = () => pki.source.update((s) => ({ ...s, entries: baseEntries }));

  it('requires the security header on every RPC (InvalidArgument, status 3)', async () => {
    const none = securityHeader([]);
    await rejectsWith(
      unary(client, 'FetchJWTSVID', { audience: ['a'] }, none),
      3,
      /security header/,
    );
    await rejectsWith(unary(client, 'ValidateJWTSVID', { audience: 'a', svid: 'x' }, none), 3);
    for (const m of ['FetchX509SVID', 'FetchX509Bundles', 'FetchJWTBundles', 'FetchWITSVID']) {
      const s = openStream(client, m, none);
      assert.equal((await s.ended)?.code, status.INVALID_ARGUMENT, m);
    }
    // The value is case-sensitive and must appear exactly once.
    for (const bad of ['True', 'false', '', ['true', 'true']]) {
      const s = openStream(client, 'FetchX509SVID', securityHeader(bad));
      assert.equal((await s.ended)?.code, status.INVALID_ARGUMENT, JSON.stringify(bad));
    }
    assert.ok(pki.source.attestCalls.length === 0, 'no attestation without the header');
  });

  it('FetchX509SVID: first message at once, with the full state in spec encodings', async () => {
    const s = openStream<X509SvidMsg>(client, 'FetchX509SVID');
    const started = Date.now();
    const m = await s.next(2000);
    assert.ok(Date.now() - started < 1000, 'the first response is sent immediately');
    assert.deepEqual(
      m.svids.map((x) => [x.spiffe_id, x.hint]),
      [
        [`${TD}/web`, 'web'],
        [`${TD}/db`, 'db'],
      ],
      'source order kept: the first is the default identity',
    );
    const svid = m.svids[0] as WireSvid;
    const [leafDer] = splitDer(svid.x509_svid);
    const leaf = new X509Certificate(leafDer as Uint8Array);
    assert.equal(leaf.subjectAltName, `URI:${TD}/web`);
    const key = createPrivateKey({ key: svid.x509_svid_key, format: 'der', type: 'pkcs8' });
    assert.ok(leaf.checkPrivateKey(key), 'x509_svid_key is the PKCS#8 DER key of the leaf');
    const bundle = splitDer(svid.bundle).map((d) => new X509Certificate(d));
    assert.deepEqual(
      bundle.map((c) => c.raw),
      [pki.ca.certDer, pki.ca2.certDer].map((d) => Buffer.from(d)),
      'bundle = concatenated DER of the own CAs',
    );
    assert.ok(
      leaf.verify(
        createPublicKey(
          (bundle[0] as X509Certificate).publicKey.export({ format: 'pem', type: 'spki' }),
        ),
      ),
    );
    assert.deepEqual(Object.keys(m.federated_bundles), [FED_TD]);
    const fed = splitDer(m.federated_bundles[FED_TD] as Buffer).map((d) => new X509Certificate(d));
    assert.deepEqual(fed[0]?.raw, Buffer.from(pki.fedCa.certDer));
    assert.deepEqual(m.crl, []);
    s.call.cancel();
  });

  it('FetchX509SVID: one message per real change, none for identical ones, removals show', async () => {
    const s = openStream<X509SvidMsg>(client, 'FetchX509SVID');
    await s.next();
    pki.source.notify(); // nothing changed
    await sleep(QUIET_MS);
    assert.equal(s.buffered.length, 0, 'an identical state is not resent');

    const extra = await pki.svid(`${TD}/cache`, 'e3', 'cache');
    pki.source.update((st) => ({
      ...st,
      entries: [...st.entries, { selector: 'unix:uid:0', svid: extra }],
    }));
    const m2 = await s.next();
    assert.deepEqual(
      m2.svids.map((x) => x.spiffe_id),
      [`${TD}/web`, `${TD}/db`, `${TD}/cache`],
    );
    await sleep(QUIET_MS);
    assert.equal(s.buffered.length, 0, 'exactly one message for one change');

    pki.source.update((st) => ({
      ...st,
      entries: st.entries.filter((e) => e.svid.entryId !== 'e2'),
    }));
    const m3 = await s.next();
    assert.deepEqual(
      m3.svids.map((x) => x.spiffe_id),
      [`${TD}/web`, `${TD}/cache`],
      'removed SVID is gone',
    );

    pki.source.update((st) => ({ ...st, federatedBundles: new Map() }));
    const m4 = await s.next();
    assert.deepEqual(m4.federated_bundles, {}, 'a removed federated bundle is absent');
    s.call.cancel();
    await sleep(50);
    pki.source.update((st) => ({
      ...st,
      entries: baseEntries,
      federatedBundles: new Map([[FED_TD, [pki.fedCa.certDer]]]),
    }));
  });

  it('FetchX509SVID: duplicate hints keep the first (oldest) SVID only', async () => {
    const dup = await pki.svid(`${TD}/web2`, 'e9', 'web');
    const unhinted = [await pki.svid(`${TD}/u1`, 'e10'), await pki.svid(`${TD}/u2`, 'e11')];
    pki.source.update((st) => ({
      ...st,
      entries: [
        ...baseEntries,
        { selector: 'unix:uid:0', svid: dup },
        ...unhinted.map((svid) => ({ selector: 'unix:uid:0', svid })),
      ],
    }));
    const s = openStream<X509SvidMsg>(client, 'FetchX509SVID');
    const m = await s.next();
    assert.deepEqual(
      m.svids.map((x) => [x.spiffe_id, x.hint]),
      [
        [`${TD}/web`, 'web'],
        [`${TD}/db`, 'db'],
        [`${TD}/u1`, ''],
        [`${TD}/u2`, ''],
      ],
    );
    s.call.cancel();
    resetEntries();
  });

  it('FetchX509SVID: PermissionDenied (7) without identity, at start and when it goes away', async () => {
    pki.source.update((st) => ({ ...st, entries: [] }));
    const s0 = openStream(client, 'FetchX509SVID');
    const e0 = await s0.ended;
    assert.equal(e0?.code, status.PERMISSION_DENIED);
    assert.match(e0?.details ?? '', /no identity issued/);
    resetEntries();

    const s = openStream<X509SvidMsg>(client, 'FetchX509SVID');
    await s.next();
    pki.source.update((st) => ({ ...st, entries: [] }));
    assert.equal((await s.ended)?.code, status.PERMISSION_DENIED);
    resetEntries();
  });

  it('FetchX509Bundles: own + federated DER bundles; repeats suppressed; 7 without identity', async () => {
    const s = openStream<BundlesMsg>(client, 'FetchX509Bundles');
    const m = await s.next();
    assert.deepEqual(Object.keys(m.bundles).sort(), [TD, FED_TD].sort());
    const own = splitDer(m.bundles[TD] as Buffer).map((d) => new X509Certificate(d).raw);
    assert.deepEqual(
      own,
      [pki.ca.certDer, pki.ca2.certDer].map((d) => Buffer.from(d)),
    );
    // An SVID change leaves the bundles as they were: no message.
    pki.source.update((st) => ({ ...st, entries: st.entries.slice(0, 1) }));
    await sleep(QUIET_MS);
    assert.equal(s.buffered.length, 0);
    pki.source.update((st) => ({ ...st, bundle: [pki.ca2.certDer] }));
    const m2 = await s.next();
    assert.equal(splitDer(m2.bundles[TD] as Buffer).length, 1, 'the retired CA is gone');
    s.call.cancel();
    pki.source.update((st) => ({ ...st, entries: [], bundle: [pki.ca.certDer, pki.ca2.certDer] }));
    assert.equal(
      (await openStream(client, 'FetchX509Bundles').ended)?.code,
      status.PERMISSION_DENIED,
    );
    resetEntries();
  });

  it('FetchJWTBundles: plain JWKS with kid per trust domain; repeats suppressed; 7 without identity', async () => {
    const s = openStream<BundlesMsg>(client, 'FetchJWTBundles');
    const m = await s.next();
    assert.deepEqual(Object.keys(m.bundles).sort(), [TD, FED_TD].sort());
    const jwks = JSON.parse((m.bundles[TD] as Buffer).toString('utf8')) as {
      keys: Record<string, unknown>[];
    };
    assert.deepEqual(Object.keys(jwks), ['keys'], 'no spiffe_sequence / spiffe_refresh_hint');
    assert.equal(jwks.keys[0]?.['kid'], 'k1');
    assert.equal(jwks.keys[0]?.['use'], undefined);
    pki.source.update((st) => ({ ...st, bundle: [pki.ca.certDer] })); // X.509 only
    await sleep(QUIET_MS);
    assert.equal(s.buffered.length, 0, 'an X.509 change does not resend JWT bundles');
    pki.source.update((st) => ({ ...st, jwtBundles: new Map([[TD, pki.jwks]]) }));
    const m2 = await s.next();
    assert.deepEqual(Object.keys(m2.bundles), [TD], 'the dropped federated JWKS is gone');
    s.call.cancel();
    pki.source.update((st) => ({ ...st, entries: [] }));
    assert.equal(
      (await openStream(client, 'FetchJWTBundles').ended)?.code,
      status.PERMISSION_DENIED,
    );
    pki.source.update((st) => ({
      ...st,
      entries: baseEntries,
      bundle: [pki.ca.certDer, pki.ca2.certDer],
      jwtBundles: new Map([
        [TD, pki.jwks],
        [FED_TD, pki.fedJwks],
      ]),
    }));
  });

  it('a caller matching entries without any SVID yet: bundles yes, FetchX509SVID 7', async () => {
    pki.source.identifiedWithoutSvids = true;
    pki.source.update((st) => ({ ...st, entries: [] }));
    try {
      const jwt = openStream<BundlesMsg>(client, 'FetchJWTBundles');
      assert.deepEqual(Object.keys((await jwt.next()).bundles).sort(), [TD, FED_TD].sort());
      jwt.call.cancel();
      const x509b = openStream<BundlesMsg>(client, 'FetchX509Bundles');
      assert.deepEqual(Object.keys((await x509b.next()).bundles).sort(), [TD, FED_TD].sort());
      x509b.call.cancel();
      const e = await openStream(client, 'FetchX509SVID').ended;
      assert.equal(e?.code, status.PERMISSION_DENIED);
      assert.match(e?.details ?? '', /no identity issued/);
    } finally {
      pki.source.identifiedWithoutSvids = false;
      resetEntries();
    }
  });

  it('FetchJWTSVID: argument checks (3), no identity (7), and tokens for the caller', async () => {
    await rejectsWith(
      unary(client, 'FetchJWTSVID', { audience: [] }),
      3,
      /audience must be specified/,
    );
    await rejectsWith(
      unary(client, 'FetchJWTSVID', { audience: ['a'], spiffe_id: 'http://x/y' }),
      3,
      /invalid requested SPIFFE ID/,
    );
    await rejectsWith(
      unary(client, 'FetchJWTSVID', { audience: ['a'], spiffe_id: `${TD}/nope` }),
      7,
    );
    const all = await unary<{ svids: { spiffe_id: string; svid: string; hint: string }[] }>(
      client,
      'FetchJWTSVID',
      { audience: ['aud1'] },
    );
    assert.deepEqual(
      all.svids.map((s) => [s.spiffe_id, s.hint]),
      [
        [`${TD}/web`, 'web'],
        [`${TD}/db`, 'db'],
      ],
    );
    const one = await unary<{ svids: { spiffe_id: string; svid: string }[] }>(
      client,
      'FetchJWTSVID',
      { audience: ['aud1'], spiffe_id: `${TD}/db` },
    );
    assert.deepEqual(
      one.svids.map((s) => s.spiffe_id),
      [`${TD}/db`],
    );
    assert.equal(one.svids[0]?.svid.split('.').length, 3);
    pki.source.update((st) => ({ ...st, entries: [] }));
    await rejectsWith(unary(client, 'FetchJWTSVID', { audience: ['a'] }), 7);
    resetEntries();
  });

  it('ValidateJWTSVID: argument checks, failure reasons (3), spiffe_id + claims with aud as a list', async () => {
    const { svids } = await unary<{ svids: { svid: string }[] }>(client, 'FetchJWTSVID', {
      audience: ['aud1'],
      spiffe_id: `${TD}/web`,
    });
    const token = svids[0]?.svid as string;
    await rejectsWith(
      unary(client, 'ValidateJWTSVID', { audience: '', svid: token }),
      3,
      /audience must be specified/,
    );
    await rejectsWith(
      unary(client, 'ValidateJWTSVID', { audience: 'aud1', svid: '' }),
      3,
      /svid must be specified/,
    );
    await rejectsWith(
      unary(client, 'ValidateJWTSVID', { audience: 'other', svid: token }),
      3,
      /audience/,
    );
    await rejectsWith(
      unary(client, 'ValidateJWTSVID', { audience: 'aud1', svid: 'a.b.c' }),
      3,
      /invalid JWT-SVID/,
    );
    type StructValue = { listValue?: { values: { stringValue: string }[] }; stringValue?: string };
    const ok = await unary<{ spiffe_id: string; claims: { fields: Record<string, StructValue> } }>(
      client,
      'ValidateJWTSVID',
      { audience: 'aud1', svid: token },
    );
    assert.equal(ok.spiffe_id, `${TD}/web`);
    assert.equal(ok.claims.fields['sub']?.stringValue, `${TD}/web`);
    assert.deepEqual(
      ok.claims.fields['aud']?.listValue?.values.map((v) => v.stringValue),
      ['aud1'],
    );
  });

  it('WIT-SVID profile: Unimplemented (12)', async () => {
    for (const m of ['FetchWITSVID', 'FetchWITBundles']) {
      assert.equal((await openStream(client, m).ended)?.code, status.UNIMPLEMENTED, m);
    }
  });

  it('a cancelled stream unsubscribes from the source', async () => {
    const streams = [0, 1, 2].map(() => openStream(client, 'FetchX509SVID'));
    await Promise.all(streams.map((s) => s.next()));
    assert.equal(pki.source.listenerCount, 3);
    streams.forEach((s) => s.call.cancel());
    const deadline = Date.now() + 2000;
    while (pki.source.listenerCount > 0 && Date.now() < deadline) await sleep(10);
    assert.equal(pki.source.listenerCount, 0);
  });
});

describe('Workload API shutdown', () => {
  it('ends open streams with Unavailable (14) and removes the socket', async () => {
    const pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/a`, 'e1') },
    ]);
    const run = await startOnTempSocket(pki.source);
    const client = workloadClient(run.socketPath);
    const s = openStream(client, 'FetchX509SVID');
    await s.next();
    await run.api.close();
    assert.equal((await s.ended)?.code, status.UNAVAILABLE);
    const { existsSync } = await import('node:fs');
    assert.equal(existsSync(run.socketPath), false);
    assert.equal(pki.source.listenerCount, 0);
    client.close();
    await run.stop();
  });
});
