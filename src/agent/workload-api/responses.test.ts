// Message building and stream pacing, without a socket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimsStruct } from './claims.ts';
import type { X509SvidItem } from './identity-source.ts';
import {
  MAX_HINT_BYTES,
  concatDer,
  uniqueHints,
  usableHint,
  x509BundlesResponse,
  x509SvidResponse,
} from './responses.ts';
import { hasSecurityHeader } from './security-header.ts';
import { changeTicks } from './watch.ts';

const item = (entryId: string, hint: string): X509SvidItem => ({
  spiffeId: `spiffe://td/${entryId}`,
  chainDer: [Uint8Array.of(1), Uint8Array.of(2, 3)],
  keyPkcs8Der: Uint8Array.of(9),
  hint,
  entryId,
  expiresAt: 0,
});

const view = (svids: X509SvidItem[]) => ({
  svids,
  identified: svids.length > 0,
  trustDomainId: 'spiffe://td',
  bundle: [Uint8Array.of(7), Uint8Array.of(8)],
  federatedBundles: new Map([
    ['spiffe://td', [Uint8Array.of(66)]], // a misbehaving federation entry for our own domain
    ['spiffe://fed', [Uint8Array.of(5)]],
    ['spiffe://empty', []],
  ]),
  jwtBundles: new Map<string, string>(),
});

describe('responses', () => {
  it('concatenates DER and keeps the first SVID per hint, in source order', () => {
    assert.deepEqual(
      concatDer([Uint8Array.of(1), Uint8Array.of(), Uint8Array.of(2, 3)]),
      Uint8Array.of(1, 2, 3),
    );
    const out = uniqueHints([
      item('a', 'x'),
      item('b', ''),
      item('c', 'x'),
      item('d', ''),
      item('e', 'y'),
    ]);
    assert.deepEqual(
      out.map((s) => s.entryId),
      ['a', 'b', 'd', 'e'],
    );
  });

  it('does not send hints longer than 1024 bytes', () => {
    assert.equal(usableHint('h'.repeat(MAX_HINT_BYTES)), 'h'.repeat(MAX_HINT_BYTES));
    assert.equal(usableHint('é'.repeat(MAX_HINT_BYTES / 2 + 1)), '');
  });

  it('X509SVIDResponse: chain leaf first, own bundle per SVID, federated bundles, no CRLs', () => {
    const m = x509SvidResponse(view([item('a', 'x')]));
    assert.deepEqual(m.svids[0]?.x509Svid, Uint8Array.of(1, 2, 3));
    assert.deepEqual(m.svids[0]?.bundle, Uint8Array.of(7, 8));
    assert.deepEqual(m.svids[0]?.x509SvidKey, Uint8Array.of(9));
    assert.deepEqual(Object.keys(m.federatedBundles).sort(), ['spiffe://fed', 'spiffe://td']);
    assert.deepEqual(m.crl, []);
  });

  it('X509BundlesResponse: the own bundle is never shadowed; empty bundles are absent', () => {
    const m = x509BundlesResponse(view([item('a', '')]));
    assert.deepEqual(m.bundles['spiffe://td'], Uint8Array.of(7, 8));
    assert.deepEqual(m.bundles['spiffe://fed'], Uint8Array.of(5));
    assert.equal('spiffe://empty' in m.bundles, false);
  });

  it('claims: aud always a list; JSON-only values', () => {
    assert.deepEqual(claimsStruct({ sub: 's', aud: 'a', exp: 1, x: undefined }), {
      sub: 's',
      aud: ['a'],
      exp: 1,
    });
    assert.deepEqual(claimsStruct({ aud: ['a', 'b'] })['aud'], ['a', 'b']);
  });

  it('security header: exactly one value "true"', () => {
    assert.equal(hasSecurityHeader(new Headers({ 'workload.spiffe.io': 'true' })), true);
    const two = new Headers();
    two.append('workload.spiffe.io', 'true');
    two.append('workload.spiffe.io', 'true');
    assert.equal(hasSecurityHeader(two), false);
    assert.equal(hasSecurityHeader(new Headers({ 'workload.spiffe.io': 'TRUE' })), false);
    assert.equal(hasSecurityHeader(new Headers()), false);
  });
});

describe('changeTicks', () => {
  it('ticks at once, coalesces bursts, stops and unsubscribes on abort', async () => {
    const listeners = new Set<() => void>();
    const source = {
      onChange(l: () => void) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    };
    const ac = new AbortController();
    const it = changeTicks(source, ac.signal)[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: undefined, done: false }); // at once
    for (let i = 0; i < 100; i++) listeners.forEach((l) => l()); // a burst while busy
    assert.equal((await it.next()).done, false);
    const pending = it.next(); // nothing new: waits
    const raced = await Promise.race([
      pending,
      new Promise((r) => setTimeout(() => r('waiting'), 50)),
    ]);
    assert.equal(raced, 'waiting', 'a burst is one tick');
    ac.abort();
    assert.equal((await pending).done, true);
    assert.equal(listeners.size, 0);
  });
});
