// Shared stream answers (shared-responses.ts): one encoding per selector set and change, never
// one caller's answer for another, dropped on change, on an entry's expiry and when the last
// stream closes.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import type { Entry } from '../../core/entry.ts';
import type { Selector } from '../../core/selector.ts';
import { X509SVIDResponseSchema } from '../../../proto/gen/spiffe/workload_pb.js';
import type { AttestedCaller } from '../attestation/caller.ts';
import { x509SvidResponse } from './responses.ts';
import { SharedResponses, type SharedAnswer, type StreamKind } from './shared-responses.ts';
import { TD, makePki, type Pki } from './testing/fixtures.ts';

const X509: StreamKind = {
  name: 'x509-svid',
  schema: X509SVIDResponseSchema,
  toMessage: x509SvidResponse,
  needsSvid: true,
};

function callerOf(uid: number, pid = 1000 + uid): AttestedCaller {
  const selectors: Selector[] = [{ type: 'unix', value: `uid:${uid}` }];
  return { process: { pid, uid, gid: uid }, transport: 'unix', selectors, entries: [] };
}

function frameOf(a: SharedAnswer): Buffer {
  if ('error' in a) throw a.error;
  return a.frame;
}

function idsIn(frame: Buffer): string[] {
  return fromBinary(X509SVIDResponseSchema, frame.subarray(5)).svids.map((s) => s.spiffeId);
}

describe('shared stream answers', () => {
  let pki: Pki;
  before(async () => {
    pki = await makePki(async (p) => [
      { selector: 'unix:uid:1', svid: await p.svid(`${TD}/one`, 'e1') },
      { selector: 'unix:uid:2', svid: await p.svid(`${TD}/two`, 'e2') },
    ]);
  });

  const shared = (entries: readonly Entry[] = [], now = () => 0) =>
    new SharedResponses({
      source: pki.source,
      attestation: { rematch: (c) => ({ ...c, entries }) },
      now,
    });

  it('encodes once for callers with the same selectors, apart for different ones', () => {
    const r = shared();
    const close = r.open();
    const a1 = callerOf(1);
    const a2 = callerOf(1, 4242); // another process with the same selectors
    const b = callerOf(2);
    const f1 = frameOf(r.answer(X509, a1, SharedResponses.callerKey(a1)));
    const f2 = frameOf(r.answer(X509, a2, SharedResponses.callerKey(a2)));
    const g = frameOf(r.answer(X509, b, SharedResponses.callerKey(b)));
    assert.equal(f1, f2, 'the same bytes, not a second encoding');
    assert.deepEqual(idsIn(f1), [`${TD}/one`]);
    assert.deepEqual(idsIn(g), [`${TD}/two`], 'never the other caller’s SVID');
    assert.equal(f1.readUInt32BE(1), f1.byteLength - 5, 'a gRPC frame: flag, length, message');
    close();
  });

  it('computes again after a change, and refuses a caller without SVIDs', () => {
    const r = shared();
    const close = r.open();
    const a = callerOf(1);
    const key = SharedResponses.callerKey(a);
    const before = frameOf(r.answer(X509, a, key));
    r.changed();
    const after = frameOf(r.answer(X509, a, key));
    assert.notEqual(after, before, 'a fresh encoding after the change');
    assert.deepEqual(after, before, 'of the same content');
    const nobody = callerOf(3);
    const refused = r.answer(X509, nobody, SharedResponses.callerKey(nobody));
    assert.ok('error' in refused);
    assert.equal(refused.error.message, 'no identity issued');
    close();
  });

  it('drops an answer when one of its entries expires, and everything when no stream is open', () => {
    let now = 0;
    const expiring = { expiresAt: 100 } as Entry;
    const r = shared([expiring], () => now);
    const close = r.open();
    const a = callerOf(1);
    const key = SharedResponses.callerKey(a);
    const first = frameOf(r.answer(X509, a, key));
    assert.equal(frameOf(r.answer(X509, a, key)), first);
    now = 100;
    assert.notEqual(frameOf(r.answer(X509, a, key)), first, 'recomputed at expiry');
    close();
    const lasting = shared();
    const closeLasting = lasting.open();
    const held = frameOf(lasting.answer(X509, a, key));
    assert.equal(frameOf(lasting.answer(X509, a, key)), held);
    closeLasting();
    const reopened = lasting.open();
    assert.notEqual(frameOf(lasting.answer(X509, a, key)), held, 'nothing kept without streams');
    reopened();
  });
});
