// X509SvidCache: when the server cannot be reached (e.g. entries restored from the data dir while
// it is down) minting pauses with exponential backoff, logged once, instead of retrying on every
// call; an entry change re-mints only when it changes what the certificate holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import type { Entry } from '../../core/entry.ts';
import { entryOf } from '../../core/testing/entry.ts';
import { parseCsr } from '../../crypto/x509/csr.ts';
import { issueX509SvidSync } from '../../crypto/x509/leaf.ts';
import { HOUR, makeCa } from '../../crypto/x509/testing/ca.ts';
import { X509SvidCache } from './x509-svid-cache.ts';

const entry: Entry = entryOf({
  id: 'e1',
  spiffeId: 'spiffe://example.org/w',
  parentId: 'spiffe://example.org/spire/agent/join_token/a',
  selectors: [{ type: 'unix', value: 'uid:1' }],
});
const entries = new Map([[entry.id, entry]]);

describe('X509SvidCache: mint failures', () => {
  it('pauses minting with backoff after a failed call, logging once per run of failures', async () => {
    const clock = new ManualClock(1_000_000);
    const logs: string[] = [];
    let calls = 0;
    const cache = new X509SvidCache({
      clock,
      maxSize: 10,
      mintBackoff: { initialMs: 1000, maxMs: 4000 },
      log: (m) => logs.push(m),
      mint: async () => {
        calls++;
        throw new Error('connect ECONNREFUSED');
      },
    });
    await assert.rejects(cache.refresh(entries, ['e1']), /ECONNREFUSED/);
    assert.equal(calls, 1);
    // Paused: refresh asks the server nothing and does not fail.
    await cache.refresh(entries, ['e1']);
    await cache.refresh(entries);
    assert.equal(calls, 1);
    clock.advance(1000);
    await assert.rejects(cache.refresh(entries, ['e1']));
    assert.equal(calls, 2);
    clock.advance(1000); // the pause doubled to 2 s
    await cache.refresh(entries, ['e1']);
    assert.equal(calls, 2);
    clock.advance(1000);
    await assert.rejects(cache.refresh(entries, ['e1']));
    clock.advance(4000); // capped at maxMs
    await assert.rejects(cache.refresh(entries, ['e1']));
    assert.equal(calls, 4);
    assert.equal(logs.length, 1);
    assert.match(logs[0] ?? '', /pausing minting/);
    assert.equal(cache.size, 0);
  });
});

describe('X509SvidCache: entry changes', () => {
  it('re-mints only when the entry changes what the certificate holds', async () => {
    const ca = await makeCa('ec-p256', 'example.org', Date.now());
    let minted = 0;
    const cache = new X509SvidCache({
      clock: new ManualClock(Date.now()),
      maxSize: 10,
      mint: async (params) =>
        params.map((p) => {
          minted++;
          const csr = parseCsr(p.csr);
          const leaf = issueX509SvidSync({
            ca,
            subjectPublicKey: csr.publicKeyDer,
            spiffeId: entry.spiffeId,
            notBefore: Date.now() - 10_000,
            notAfter: Date.now() + HOUR,
          });
          return { entryId: p.entryId, ok: true as const, chainDer: [leaf.der] };
        }),
    });
    await cache.refresh(entries, ['e1']);
    assert.equal(minted, 1);
    const first = cache.get('e1');

    // A new hint, selector set or federation: same certificate, new revision recorded.
    const renamed: Entry = {
      ...entry,
      hint: 'db',
      selectors: [{ type: 'unix', value: 'uid:2' }],
      federatesWith: ['partner.test'],
      revision: 2,
    };
    await cache.refresh(new Map([['e1', renamed]]));
    assert.equal(minted, 1);
    assert.equal(cache.get('e1')?.chainDer, first?.chainDer);
    assert.equal(cache.get('e1')?.revision, 2);

    // A DNS name is in the certificate: re-minted.
    await cache.refresh(new Map([['e1', { ...renamed, dnsNames: ['db.local'], revision: 3 }]]));
    assert.equal(minted, 2);
    assert.notEqual(cache.get('e1')?.chainDer, first?.chainDer);
  });
});

describe('X509SvidCache: concurrent refreshes', () => {
  it('mints an entry revision once, and a caller wanting it waits for the mint in flight', async () => {
    const ca = await makeCa('ec-p256', 'example.org', Date.now());
    let minted = 0;
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const cache = new X509SvidCache({
      clock: new ManualClock(Date.now()),
      maxSize: 10,
      mint: async (params) => {
        await gate;
        return params.map((p) => {
          minted++;
          const leaf = issueX509SvidSync({
            ca,
            subjectPublicKey: parseCsr(p.csr).publicKeyDer,
            spiffeId: entry.spiffeId,
            notBefore: Date.now() - 10_000,
            notAfter: Date.now() + HOUR,
          });
          return { entryId: p.entryId, ok: true as const, chainDer: [leaf.der] };
        });
      },
    });
    const timer = cache.refresh(entries);
    await new Promise((r) => setTimeout(r, 50)); // the first mint is now in flight
    let onDemandDone = false;
    const onDemand = cache.refresh(entries, ['e1']).then(() => (onDemandDone = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(onDemandDone, false, 'the on-demand call waits for the mint in flight');
    release();
    await Promise.all([timer, onDemand]);
    assert.equal(minted, 1);
    assert.ok(cache.get('e1'));
  });
});

describe('X509SvidCache: rotation', () => {
  it('rotates at half of the life left on arrival, not of the backdated notBefore', async () => {
    // A 6 s SVID issued now, backdated 10 s as the server does: half of notAfter − notBefore
    // (8 s) would be past already, re-minting it on every refresh.
    const T = Math.floor(Date.now() / 1000) * 1000; // certificate times have whole seconds
    const ca = await makeCa('ec-p256', 'example.org', T - HOUR);
    const clock = new ManualClock(T);
    let minted = 0;
    const cache = new X509SvidCache({
      clock,
      maxSize: 10,
      random: () => 1, // the most jitter: a tenth of the life left
      mint: async (params) =>
        params.map((p) => {
          minted++;
          const leaf = issueX509SvidSync({
            ca,
            subjectPublicKey: parseCsr(p.csr).publicKeyDer,
            spiffeId: entry.spiffeId,
            notBefore: clock.now() - 10_000,
            notAfter: clock.now() + 6_000,
          });
          return { entryId: p.entryId, ok: true as const, chainDer: [leaf.der] };
        }),
    });
    await cache.refresh(entries);
    assert.equal(minted, 1);
    assert.equal(cache.get('e1')?.rotateAt, T + 3_000 - 600);
    clock.advance(2_399);
    await cache.refresh(entries);
    assert.equal(minted, 1, 'not due before half-life minus jitter');
    clock.advance(1);
    await cache.refresh(entries);
    assert.equal(minted, 2, 'due at half-life minus jitter');
  });
});
