// WorkloadIdentities with federated bundles: each caller sees exactly the federated bundles its
// matching entries federate with; ValidateJWTSVID accepts federated JWT-SVIDs (foreign claims
// filtered as SPIRE does); a change or removal of a federated bundle notifies the streams.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { Clock } from '../../core/clock.ts';
import type { ManagedKey } from '../../crypto/key-manager.ts';
import { signJwtSvid } from '../../crypto/jwt/sign.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { makeCa } from '../../crypto/x509/testing/ca.ts';
import { SyncAuthorizedEntriesResponseSchema } from '../../../proto/gen/tessera/v1/sync_pb.js';
import type { BundleSchema, EntrySchema } from '../../../proto/gen/tessera/v1/types_pb.js';
import type { Selector } from '../../core/selector.ts';
import { Backoff } from '../../client/workload/backoff.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import { SyncedEntryMatcher } from '../attestation/entry-matcher.ts';
import type { ServerClients } from '../identity/server-link.ts';
import { EntrySync } from '../sync/entry-sync.ts';
import { JwtSvidCache } from './jwt-svid-cache.ts';
import { WorkloadIdentities } from './workload-identities.ts';
import type { X509SvidCache } from './x509-svid-cache.ts';

const clock: Clock = { now: () => Date.now() };
const keys = new MemoryKeyManager();
const own = {
  ca: await makeCa('ec-p256', 'example.org'),
  jwt: await keys.generate('own', 'ec-p256'),
};
const partner = {
  ca: await makeCa('ec-p256', 'partner.test'),
  jwt: await keys.generate('partner', 'ec-p256'),
};
const other = {
  ca: await makeCa('ec-p256', 'other.test'),
  jwt: await keys.generate('other', 'ec-p256'),
};

function bundle(
  td: string,
  m: { ca: { certDer: Uint8Array }; jwt: ManagedKey },
  sequence = 1,
): MessageInitShape<typeof BundleSchema> {
  return {
    trustDomain: td,
    x509Authorities: [m.ca.certDer],
    jwtAuthorities: [{ kid: `${td}-${sequence}`, publicKey: m.jwt.publicKeyDer }],
    sequence: BigInt(sequence),
    refreshHint: 300n,
  };
}

function entry(
  id: string,
  uid: number,
  federatesWith: string[],
): MessageInitShape<typeof EntrySchema> {
  return {
    id,
    spiffeId: `spiffe://example.org/${id}`,
    parentId: 'spiffe://example.org/spire/agent/join_token/a',
    selectors: [{ type: 'unix', value: `uid:${uid}` }],
    federatesWith,
    revision: 1n,
    createdAt: 1000n,
  };
}

const sel = (uid: number): Selector[] => [{ type: 'unix', value: `uid:${uid}` }];

/** The matcher of the last setup(): callers are attested against its entries. */
let matcher: SyncedEntryMatcher;
const who = (selectors: Selector[]): AttestedCaller => ({
  process: { pid: 1, uid: 1, gid: 1 },
  transport: 'unix',
  selectors,
  entries: matcher.match(selectors),
});

async function setup(allowedForeignJwtClaims?: string[]) {
  const sync = new EntrySync({
    clients: () => ({}) as ServerClients,
    onRefused: async () => {},
    onBundle: async () => {},
    backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
    log: () => {},
    trustDomain: 'example.org',
  });
  const x509 = {
    get: (id: string) => ({
      entryId: id,
      spiffeId: `spiffe://example.org/${id}`,
      chainDer: [own.ca.certDer],
      keyPkcs8Der: new Uint8Array([1]),
      expiresAt: Date.now() + 3_600_000,
    }),
    onChange: () => () => {},
    refresh: async () => {},
  } as unknown as X509SvidCache;
  matcher = new SyncedEntryMatcher(sync, clock);
  const ids = new WorkloadIdentities({
    trustDomain: 'example.org',
    sync,
    x509,
    jwt: new JwtSvidCache(clock, 10),
    mintJwt: () => Promise.reject(new Error('not in this test')),
    clock,
    ...(allowedForeignJwtClaims ? { allowedForeignJwtClaims } : {}),
  });
  await sync.apply(
    create(SyncAuthorizedEntriesResponseSchema, {
      initial: true,
      upserted: [
        entry('web', 1, ['partner.test']),
        entry('db', 2, ['other.test', 'missing.test']),
        entry('plain', 3, []),
      ],
      bundle: bundle('example.org', own),
      federatedBundles: [bundle('partner.test', partner), bundle('other.test', other)],
    }),
  );
  return { sync, ids };
}

async function token(td: string, key: ManagedKey, kid: string, aud = 'me'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwtSvid({
    key,
    kid,
    claims: { sub: `spiffe://${td}/w`, aud: [aud], exp: now + 300, iat: now, iss: 'https://x' },
  });
}

describe('WorkloadIdentities: federated bundles', () => {
  it('a caller gets exactly the federated bundles its entries federate with', async () => {
    const { ids } = await setup();
    const web = ids.view(who(sel(1)));
    assert.deepEqual([...web.federatedBundles.keys()], ['spiffe://partner.test']);
    assert.deepEqual(
      web.federatedBundles.get('spiffe://partner.test')?.map((d) => Buffer.from(d)),
      [Buffer.from(partner.ca.certDer)],
    );
    assert.deepEqual([...web.jwtBundles.keys()].sort(), [
      'spiffe://example.org',
      'spiffe://partner.test',
    ]);
    const jwks = JSON.parse(web.jwtBundles.get('spiffe://partner.test') ?? '') as {
      keys: { kid: string }[];
    };
    assert.deepEqual(
      jwks.keys.map((k) => k.kid),
      ['partner.test-1'],
    );

    // Not held by the agent (missing.test): simply absent.
    assert.deepEqual([...ids.view(who(sel(2))).federatedBundles.keys()], ['spiffe://other.test']);
    assert.equal(ids.view(who(sel(3))).federatedBundles.size, 0);
    assert.deepEqual([...ids.view(who(sel(3))).jwtBundles.keys()], ['spiffe://example.org']);
    // Both workloads' entries at once: the union.
    assert.deepEqual([...ids.view(who([...sel(1), ...sel(2)])).federatedBundles.keys()].sort(), [
      'spiffe://other.test',
      'spiffe://partner.test',
    ]);
  });

  it('a change or removal of a federated bundle notifies and shows in the next view', async () => {
    const { sync, ids } = await setup();
    let notified = 0;
    ids.onChange(() => notified++);
    await sync.apply(
      create(SyncAuthorizedEntriesResponseSchema, {
        federatedBundles: [bundle('partner.test', partner, 2)],
      }),
    );
    assert.equal(notified, 1);
    const jwks = JSON.parse(
      ids.view(who(sel(1))).jwtBundles.get('spiffe://partner.test') ?? '',
    ) as {
      keys: { kid: string }[];
    };
    assert.equal(jwks.keys[0]?.kid, 'partner.test-2');
    await sync.apply(
      create(SyncAuthorizedEntriesResponseSchema, { federatedBundlesRemoved: ['partner.test'] }),
    );
    assert.equal(notified, 2);
    assert.equal(ids.view(who(sel(1))).federatedBundles.size, 0);
    assert.deepEqual([...ids.view(who(sel(1))).jwtBundles.keys()], ['spiffe://example.org']);
  });

  it("ValidateJWTSVID: own and the caller's federated trust domains; foreign claims filtered", async () => {
    const { sync, ids } = await setup();
    const mine = await ids.validateJwtSvid(
      await token('example.org', own.jwt, 'example.org-1'),
      'me',
      who(sel(1)),
    );
    assert.equal(mine.spiffeId, 'spiffe://example.org/w');
    assert.equal(mine.claims.iss, 'https://x', 'own claims are all returned');

    const theirs = await ids.validateJwtSvid(
      await token('partner.test', partner.jwt, 'partner.test-1'),
      'me',
      who(sel(1)),
    );
    assert.equal(theirs.spiffeId, 'spiffe://partner.test/w');
    assert.deepEqual(Object.keys(theirs.claims).sort(), ['aud', 'exp', 'sub']);

    const allowed = await (
      await setup(['iss'])
    ).ids.validateJwtSvid(
      await token('partner.test', partner.jwt, 'partner.test-1'),
      'me',
      who(sel(1)),
    );
    assert.deepEqual(Object.keys(allowed.claims).sort(), ['aud', 'exp', 'iss', 'sub']);

    // A key of one trust domain never verifies another's tokens.
    await assert.rejects(
      ids.validateJwtSvid(
        await token('partner.test', other.jwt, 'other.test-1'),
        'me',
        who(sel(1)),
      ),
      /unknown kid/,
    );
    await assert.rejects(
      ids.validateJwtSvid(
        await token('stranger.test', partner.jwt, 'partner.test-1'),
        'me',
        who(sel(1)),
      ),
      /unknown kid "partner.test-1" for trust domain "stranger.test"/,
    );
    await assert.rejects(
      ids.validateJwtSvid(
        await token('partner.test', partner.jwt, 'partner.test-1'),
        'you',
        who(sel(1)),
      ),
      /aud/,
    );

    // Only the trust domains the caller's own entries federate with, as in SPIRE: a caller whose
    // entries federate elsewhere, or none at all, or without any identity, gets only its own.
    const partnerToken = await token('partner.test', partner.jwt, 'partner.test-1');
    for (const selectors of [sel(2), sel(3), []]) {
      await assert.rejects(ids.validateJwtSvid(partnerToken, 'me', who(selectors)), /unknown kid/);
      const ok = await ids.validateJwtSvid(
        await token('example.org', own.jwt, 'example.org-1'),
        'me',
        who(selectors),
      );
      assert.equal(ok.spiffeId, 'spiffe://example.org/w');
    }

    // Dropped: its tokens no longer validate.
    await sync.apply(
      create(SyncAuthorizedEntriesResponseSchema, { federatedBundlesRemoved: ['partner.test'] }),
    );
    await assert.rejects(
      ids.validateJwtSvid(
        await token('partner.test', partner.jwt, 'partner.test-1'),
        'me',
        who(sel(1)),
      ),
      /unknown kid/,
    );
  });
});

describe('WorkloadIdentities: entries without a cached X.509-SVID (restored, server away)', () => {
  it('prepare survives failed mints; the view is identified but has no SVIDs; validation works', async () => {
    const sync = new EntrySync({
      clients: () => ({}) as ServerClients,
      onRefused: async () => {},
      onBundle: async () => {},
      backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
      log: () => {},
      trustDomain: 'example.org',
    });
    const scratch = new EntrySync({
      clients: () => ({}) as ServerClients,
      onRefused: async () => {},
      onBundle: async () => {},
      backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
      log: () => {},
      trustDomain: 'example.org',
    });
    await scratch.apply(
      create(SyncAuthorizedEntriesResponseSchema, {
        initial: true,
        upserted: [entry('web', 1, ['partner.test'])],
        bundle: bundle('example.org', own),
        federatedBundles: [bundle('partner.test', partner)],
      }),
    );
    sync.restore({
      entries: scratch.entries,
      bundle: scratch.bundle,
      federatedBundles: scratch.federatedBundles,
    });
    let refreshes = 0;
    const x509 = {
      get: () => undefined,
      onChange: () => () => {},
      refresh: async () => {
        refreshes++;
        throw new Error('connect ECONNREFUSED');
      },
    } as unknown as X509SvidCache;
    matcher = new SyncedEntryMatcher(sync, clock);
    const ids = new WorkloadIdentities({
      trustDomain: 'example.org',
      sync,
      x509,
      jwt: new JwtSvidCache(clock, 10),
      mintJwt: () => Promise.reject(new Error('server away')),
      clock,
    });
    const caller = who(sel(1));
    await ids.prepare(caller);
    assert.equal(refreshes, 1);
    const view = ids.view(caller);
    assert.equal(view.identified, true);
    assert.deepEqual(view.svids, []);
    assert.deepEqual([...view.jwtBundles.keys()].sort(), [
      'spiffe://example.org',
      'spiffe://partner.test',
    ]);
    assert.equal(ids.view(who(sel(9))).identified, false);
    const ok = await ids.validateJwtSvid(
      await token('partner.test', partner.jwt, 'partner.test-1'),
      'me',
      caller,
    );
    assert.equal(ok.spiffeId, 'spiffe://partner.test/w');
  });
});
