import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type AuditEvent,
  type AuditRecord,
  GENESIS_HASH,
  auditHash,
  canonicalJson,
  redactDetails,
  verifyChain,
} from './audit.ts';

function event(n: number, details: Record<string, unknown> = {}): AuditEvent {
  return {
    time: 1_700_000_000_000 + n,
    actor: 'local-admin',
    action: 'entry.create',
    target: `e-${n}`,
    outcome: 'success',
    correlationId: `c-${n}`,
    details,
  };
}

/** Builds a valid chain the way the store does. */
function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = event(seq, { n: seq });
    const hash = auditHash(seq, prevHash, e);
    out.push({ ...e, seq, prevHash, hash });
    prevHash = hash;
  }
  return out;
}

describe('canonicalJson', () => {
  it('sorts keys at every level, so insertion order does not matter', () => {
    const a = { b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } };
    const b = { a: { c: 'x', d: [1, { y: 2, z: 1 }] }, b: 1 };
    assert.equal(canonicalJson(a), canonicalJson(b));
    assert.equal(canonicalJson(a), '{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
  });

  it('drops undefined members and writes null for undefined values', () => {
    assert.equal(canonicalJson({ a: undefined, b: null }), '{"b":null}');
    assert.equal(canonicalJson(undefined), 'null');
    assert.equal(canonicalJson([undefined, 'x']), '[null,"x"]');
  });

  it('keeps array order', () => {
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });
});

describe('auditHash', () => {
  it('is the sha256 of the canonical record and covers seq, prevHash and content', () => {
    const e = event(1, { k: 'v' });
    const h = auditHash(1, GENESIS_HASH, e);
    const body = canonicalJson({ seq: 1, prevHash: GENESIS_HASH, ...e });
    assert.equal(h, createHash('sha256').update(body).digest('hex'));
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.notEqual(auditHash(2, GENESIS_HASH, e), h);
    assert.notEqual(auditHash(1, 'f'.repeat(64), e), h);
    assert.notEqual(auditHash(1, GENESIS_HASH, { ...e, outcome: 'denied' }), h);
    assert.notEqual(auditHash(1, GENESIS_HASH, { ...e, details: { k: 'w' } }), h);
  });

  it('does not depend on the key order of details', () => {
    const a = auditHash(1, GENESIS_HASH, event(1, { x: 1, y: { p: 1, q: 2 } }));
    const b = auditHash(1, GENESIS_HASH, event(1, { y: { q: 2, p: 1 }, x: 1 }));
    assert.equal(a, b);
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain and reports where it ended', () => {
    const records = chain(5);
    const r = verifyChain(records);
    assert.equal(r.ok, true);
    assert.deepEqual(r, {
      ok: true,
      count: 5,
      last: { prevHash: records[4]?.hash, prevSeq: 5 },
    });
  });

  it('continues from a checkpoint', () => {
    const records = chain(6);
    const first = verifyChain(records.slice(0, 3));
    const rest = verifyChain(records.slice(3), first.last);
    assert.deepEqual({ ok: rest.ok, last: rest.last.prevSeq }, { ok: true, last: 6 });
    // Starting mid-chain from genesis fails.
    assert.equal(verifyChain(records.slice(3)).ok, false);
  });

  it('detects an edited record', () => {
    const records = chain(4);
    records[2] = { ...(records[2] as AuditRecord), target: 'someone-else' };
    const r = verifyChain(records);
    assert.equal(r.ok, false);
    assert.deepEqual(r, {
      ok: false,
      seq: 3,
      reason: 'record content does not match its hash',
      last: { prevHash: records[1]?.hash, prevSeq: 2 },
    });
  });

  it('detects edited details', () => {
    const records = chain(3);
    records[0] = { ...(records[0] as AuditRecord), details: { n: 99 } };
    assert.deepEqual(((r) => (r.ok ? null : [r.seq, r.reason]))(verifyChain(records)), [
      1,
      'record content does not match its hash',
    ]);
  });

  it('detects an edited record whose hash was recomputed (the next link breaks)', () => {
    const records = chain(4);
    const r2 = records[1] as AuditRecord;
    const forged = { ...r2, actor: 'mallory' };
    records[1] = { ...forged, hash: auditHash(forged.seq, forged.prevHash, forged) };
    const r = verifyChain(records);
    assert.deepEqual(r.ok ? null : [r.seq, r.reason], [3, 'previous hash does not match']);
  });

  it('detects a removed record', () => {
    const records = chain(5);
    records.splice(2, 1);
    const r = verifyChain(records);
    assert.deepEqual(r.ok ? null : [r.seq, r.reason], [4, 'expected seq 3']);
  });

  it('detects reordered records', () => {
    const records = chain(4);
    const [a, b] = [records[1] as AuditRecord, records[2] as AuditRecord];
    records[1] = b;
    records[2] = a;
    const r = verifyChain(records);
    assert.deepEqual(r.ok ? null : [r.seq, r.reason], [3, 'expected seq 2']);
  });

  it('detects renumbered records (removed, then seq rewritten)', () => {
    const records = chain(4);
    const tail = records.slice(2).map((r) => ({ ...r, seq: r.seq - 1 }));
    const r = verifyChain([records[0] as AuditRecord, ...tail]);
    assert.deepEqual(r.ok ? null : [r.seq, r.reason], [2, 'previous hash does not match']);
  });
});

describe('redactDetails', () => {
  it('redacts secret-looking keys', () => {
    const out = redactDetails({
      token: 't',
      joinToken: 't',
      secret: 's',
      clientSecret: 's',
      password: 'p',
      privateKey: 'k',
      private_key: 'k',
      key: 'k',
      authorization: 'Bearer x',
      cookie: 'c',
      credentials: 'c',
    });
    for (const [k, v] of Object.entries(out)) assert.equal(v, '[redacted]', k);
  });

  it('keeps ids, kids, hashes and key types', () => {
    const kept = {
      tokenHash: 'abc',
      token_hash: 'abc',
      token_id: 'id',
      secretId: 'id',
      keyId: 'kid-1',
      kid: 'kid-2',
      keyType: 'ec-p256',
      spiffeId: 'spiffe://td/x',
      entry_id: 'e1',
      count: 3,
    };
    assert.deepEqual(redactDetails(kept), kept);
  });

  it('redacts inside nested objects and leaves the input untouched', () => {
    const input = { request: { user: 'u', password: 'p', inner: { apiToken: 't', n: 1 } } };
    const out = redactDetails(input);
    assert.deepEqual(out, {
      request: { user: 'u', password: '[redacted]', inner: { apiToken: '[redacted]', n: 1 } },
    });
    assert.equal(input.request.password, 'p');
  });

  it('redacts inside arrays of objects', () => {
    const out = redactDetails({
      items: [{ id: 'a', token: 't' }, 'plain', [{ secret: 's' }]],
    });
    assert.deepEqual(out, {
      items: [{ id: 'a', token: '[redacted]' }, 'plain', [{ secret: '[redacted]' }]],
    });
  });

  it('does not pass through objects nested deeper than it inspects', () => {
    let deep: Record<string, unknown> = { password: 'p' };
    for (let i = 0; i < 10; i++) deep = { nested: deep };
    const text = JSON.stringify(redactDetails(deep));
    assert.ok(!text.includes('"p"'), text);
  });
});
