import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { TesseraError } from '../../core/errors.ts';
import { JwtMintBatcher, type JwtMintItem, type JwtMintResult } from './jwt-mint-batcher.ts';

const token = (i: JwtMintItem) => `${i.entryId}|${i.audience.join(',')}`;

/** A server stand-in: records each batch and answers when `release()` is called (or at once). */
function fakeServer(o: { hold?: boolean; deny?: string } = {}) {
  const batches: JwtMintItem[][] = [];
  const held: (() => void)[] = [];
  const mintBatch = (items: readonly JwtMintItem[]): Promise<JwtMintResult[]> => {
    batches.push([...items]);
    const answer = () =>
      items.map((i) =>
        i.entryId === o.deny
          ? { code: 'permission_denied', message: `not yours: ${i.entryId}` }
          : { token: token(i), expiresAt: 5000 },
      );
    if (!o.hold) return Promise.resolve(answer());
    return new Promise((r) => held.push(() => r(answer())));
  };
  const releaseAll = () => held.splice(0).forEach((f) => f());
  return { batches, mintBatch, releaseAll };
}

const never = () => Promise.reject(new Error('mintOne must not be called'));

describe('JWT-SVID mint batcher', () => {
  it('sends misses arriving together as one batch, in order', async () => {
    const s = fakeServer();
    const b = new JwtMintBatcher({ mintBatch: s.mintBatch, mintOne: never });
    const got = await Promise.all(
      Array.from({ length: 10 }, (_, i) => b.mint(`e${i}`, [`aud-${i}`])),
    );
    assert.equal(s.batches.length, 1);
    assert.deepEqual(
      s.batches[0]!.map((i) => i.entryId),
      Array.from({ length: 10 }, (_, i) => `e${i}`),
    );
    assert.deepEqual(
      got.map((g) => g.token),
      Array.from({ length: 10 }, (_, i) => `e${i}|aud-${i}`),
    );
  });

  it('shares one mint between identical concurrent misses (same entry and audience set)', async () => {
    const s = fakeServer();
    const b = new JwtMintBatcher({ mintBatch: s.mintBatch, mintOne: never });
    const [x, y, z] = await Promise.all([
      b.mint('e1', ['a', 'b']),
      b.mint('e1', ['b', 'a']),
      b.mint('e2', ['a', 'b']),
    ]);
    assert.equal(s.batches[0]!.length, 2);
    assert.equal(x, y);
    assert.notEqual(x!.token, z!.token);
    // Settled: a later miss for the same pair mints again (e.g. after expiry).
    await b.mint('e1', ['a', 'b']);
    assert.equal(s.batches.length, 2);
  });

  it('queues misses while maxInFlight calls are out, then sends them together', async () => {
    const s = fakeServer({ hold: true });
    const b = new JwtMintBatcher({ mintBatch: s.mintBatch, mintOne: never, maxInFlight: 1 });
    const first = b.mint('e0', ['x']);
    await new Promise((r) => setImmediate(r));
    assert.equal(s.batches.length, 1);
    const later = [b.mint('e1', ['x']), b.mint('e2', ['x']), b.mint('e3', ['x'])];
    await new Promise((r) => setImmediate(r));
    assert.equal(s.batches.length, 1, 'nothing sent while the one call is in flight');
    s.releaseAll();
    await first;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(s.batches.length, 2);
    assert.deepEqual(
      s.batches[1]!.map((i) => i.entryId),
      ['e1', 'e2', 'e3'],
    );
    s.releaseAll();
    assert.deepEqual(
      (await Promise.all(later)).map((m) => m.token),
      ['e1|x', 'e2|x', 'e3|x'],
    );
  });

  it('splits batches at maxBatch', async () => {
    const s = fakeServer();
    const b = new JwtMintBatcher({ mintBatch: s.mintBatch, mintOne: never, maxBatch: 3 });
    await Promise.all(Array.from({ length: 7 }, (_, i) => b.mint(`e${i}`, ['x'])));
    assert.deepEqual(
      s.batches.map((x) => x.length),
      [3, 3, 1],
    );
  });

  it('fails only the items the server refused, with its code', async () => {
    const s = fakeServer({ deny: 'bad' });
    const b = new JwtMintBatcher({ mintBatch: s.mintBatch, mintOne: never });
    const [ok, bad] = await Promise.allSettled([b.mint('good', ['x']), b.mint('bad', ['x'])]);
    assert.equal(ok.status, 'fulfilled');
    assert.equal(bad.status, 'rejected');
    const e = (bad as PromiseRejectedResult).reason as TesseraError;
    assert.ok(e instanceof TesseraError);
    assert.equal(e.code, 'permission_denied');
    assert.match(e.message, /not yours: bad/);
  });

  it('rejects every item of a failed call, and a short answer', async () => {
    const b = new JwtMintBatcher({
      mintBatch: () => Promise.reject(new Error('connection reset')),
      mintOne: never,
    });
    const r = await Promise.allSettled([b.mint('a', ['x']), b.mint('b', ['x'])]);
    assert.deepEqual(
      r.map((x) => x.status),
      ['rejected', 'rejected'],
    );
    const short = new JwtMintBatcher({ mintBatch: async () => [], mintOne: never });
    await assert.rejects(short.mint('a', ['x']), /fewer results/);
  });

  it('falls back to NewJWTSVID per miss on a server without the batch call', async () => {
    let batchCalls = 0;
    const ones: JwtMintItem[] = [];
    const b = new JwtMintBatcher({
      mintBatch: () => {
        batchCalls++;
        return Promise.reject(new ConnectError('no such method', Code.Unimplemented));
      },
      mintOne: async (i) => {
        ones.push(i);
        return { token: token(i), expiresAt: 1 };
      },
    });
    const got = await Promise.all([b.mint('a', ['x']), b.mint('b', ['y'])]);
    assert.deepEqual(
      got.map((g) => g.token),
      ['a|x', 'b|y'],
    );
    await b.mint('c', ['z']);
    assert.equal(batchCalls, 1, 'the batch call is not tried again');
    assert.equal(ones.length, 3);
  });
});
