import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { UnavailableError } from '../../core/errors.ts';
import {
  CredentialCache,
  type CredentialKey,
  type ReleaseOutcome,
  type ReleasedCredential,
} from './credential-cache.ts';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

const key = (over: Partial<CredentialKey> = {}): CredentialKey => ({
  entryId: 'e1',
  entryRevision: 1,
  clientKey: 'unix:uid:1000',
  server: 'db',
  ...over,
});

function released(token: string, expiresAt: number | null): ReleaseOutcome {
  const r: ReleasedCredential = {
    credential: { value: { kind: 'token', token }, expiresAt, leaseId: '' },
    spiffeId: 'spiffe://example.org/web',
    server: 'db',
    present: 'authorization-bearer',
    policy: 'web-db',
    credentialProvider: 'static',
    correlationId: `c-${token}`,
  };
  return { kind: 'released', released: r };
}

const denied: ReleaseOutcome = {
  kind: 'denied',
  denial: { reason: 'no-matching-policy', policy: '', failedCondition: '', correlationId: 'c' },
};

function counter(outcome: () => ReleaseOutcome) {
  let calls = 0;
  const release = async () => {
    calls++;
    return outcome();
  };
  return { release, calls: () => calls };
}

const tokenOf = (s: { kind: string; released?: ReleasedCredential }) => {
  const v = s.released?.credential.value;
  return v?.kind === 'token' ? v.token : undefined;
};

const peekToken = (r: ReleasedCredential | undefined) =>
  r?.credential.value.kind === 'token' ? r.credential.value.token : undefined;

describe('CredentialCache', () => {
  it('keeps a request-dependent credential for its request only; others serve every request', async () => {
    const clock = new ManualClock(T0);
    const cache = new CredentialCache({ clock, maxSize: 10 });
    const get = { method: 'GET', path: '/a', host: 'db' };
    let n = 0;
    const dependent = counter(() => {
      const out = released(`d${++n}`, clock.now() + 10 * MIN);
      if (out.kind !== 'released') return out;
      return { kind: 'released', released: { ...out.released, requestDependent: true } };
    });
    assert.equal(tokenOf(await cache.get(key({ request: get }), dependent.release)), 'd1');
    assert.equal(tokenOf(await cache.get(key({ request: get }), dependent.release)), 'd1');
    assert.equal(cache.peek(key({ request: { ...get, path: '/b' } })), undefined);
    assert.equal(cache.peek(key()), undefined, 'not for an ask without a request');
    assert.equal(
      tokenOf(await cache.get(key({ request: { ...get, path: '/b' } }), dependent.release)),
      'd2',
    );
    assert.equal(dependent.calls(), 2);
    // Without a request, a request-dependent answer is served once and not kept.
    await cache.get(key(), dependent.release);
    await cache.get(key(), dependent.release);
    assert.equal(dependent.calls(), 4);

    cache.clear();
    const plain = counter(() => released('p', clock.now() + 10 * MIN));
    await cache.get(key({ request: get }), plain.release);
    assert.equal(peekToken(cache.peek(key({ request: { ...get, path: '/c' } }))), 'p');
    assert.equal(peekToken(cache.peek(key())), 'p');
    assert.equal(plain.calls(), 1);
  });

  it('serves a released credential until shortly before it expires, then releases again', async () => {
    const clock = new ManualClock(T0);
    const cache = new CredentialCache({ clock, maxSize: 10 });
    let n = 0;
    const r = counter(() => released(`t${++n}`, clock.now() + 10 * MIN));
    const a = await cache.get(key(), r.release);
    assert.equal(a.cached, false);
    assert.equal(tokenOf(a), 't1');
    clock.advance(9 * MIN); // margin: min(30 s, 10 min / 5) = 30 s before expiry
    const b = await cache.get(key(), r.release);
    assert.equal(b.cached, true);
    assert.equal(tokenOf(b), 't1');
    clock.advance(MIN - 30_000);
    const c = await cache.get(key(), r.release);
    assert.equal(c.cached, false);
    assert.equal(tokenOf(c), 't2');
    assert.equal(r.calls(), 2);
  });

  it('keeps a static credential (no expiry) until a change', async () => {
    const clock = new ManualClock(T0);
    const cache = new CredentialCache({ clock, maxSize: 10 });
    const r = counter(() => released('static', null));
    await cache.get(key(), r.release);
    clock.advance(365 * 24 * 60 * MIN);
    assert.equal((await cache.get(key(), r.release)).cached, true);
    assert.equal(r.calls(), 1);
  });

  it('does not keep a credential that is already inside its margin', async () => {
    const clock = new ManualClock(T0);
    const cache = new CredentialCache({ clock, maxSize: 10 });
    const r = counter(() => released('short', clock.now()));
    await cache.get(key(), r.release);
    assert.equal(cache.size, 0);
  });

  it('shares one release among concurrent identical asks (single flight)', async () => {
    const clock = new ManualClock(T0);
    const cache = new CredentialCache({ clock, maxSize: 10 });
    let calls = 0;
    let finish!: (o: ReleaseOutcome) => void;
    const release = () => {
      calls++;
      return new Promise<ReleaseOutcome>((resolve) => (finish = resolve));
    };
    const asks = Array.from({ length: 20 }, () => cache.get(key(), release));
    const other = cache.get(key({ server: 'api' }), async () => released('api', null));
    finish(released('one', null));
    const answers = await Promise.all(asks);
    assert.equal(calls, 1);
    assert.ok(answers.every((a) => tokenOf(a) === 'one' && !a.cached));
    assert.equal(tokenOf(await other), 'api');
  });

  it('shares a failure among concurrent asks and releases afresh after it', async () => {
    const cache = new CredentialCache({ clock: new ManualClock(T0), maxSize: 10 });
    let calls = 0;
    const fail = async (): Promise<ReleaseOutcome> => {
      calls++;
      throw new UnavailableError('the server does not answer');
    };
    const asks = [cache.get(key(), fail), cache.get(key(), fail)];
    for (const a of asks) await assert.rejects(a, /does not answer/);
    assert.equal(calls, 1);
    assert.equal(tokenOf(await cache.get(key(), async () => released('x', null))), 'x');
  });

  it('never caches a denial', async () => {
    const cache = new CredentialCache({ clock: new ManualClock(T0), maxSize: 10 });
    const r = counter(() => denied);
    assert.equal((await cache.get(key(), r.release)).kind, 'denied');
    assert.equal((await cache.get(key(), r.release)).kind, 'denied');
    assert.equal(r.calls(), 2);
    assert.equal(cache.size, 0);
  });

  it('keeps clients apart: another entry, entry revision or selector set is another client', async () => {
    const cache = new CredentialCache({ clock: new ManualClock(T0), maxSize: 10 });
    await cache.get(key(), async () => released('mine', null));
    for (const other of [
      key({ entryId: 'e2' }),
      key({ entryRevision: 2 }),
      key({ clientKey: 'unix:uid:1001' }),
      key({ server: 'other' }),
    ]) {
      assert.equal(cache.peek(other), undefined);
      const s = await cache.get(other, async () => denied);
      assert.equal(s.kind, 'denied', JSON.stringify(other));
    }
    assert.equal(cache.peek(key())?.correlationId, 'c-mine');
  });

  it('drops everything when the access revision changes, and on every initial message', async () => {
    const cache = new CredentialCache({ clock: new ManualClock(T0), maxSize: 10 });
    cache.noteAccessRevision(5n, true);
    await cache.get(key(), async () => released('a', null));
    cache.noteAccessRevision(0n, false); // not set: unchanged
    cache.noteAccessRevision(5n, false); // the same revision
    assert.equal(cache.size, 1);
    cache.noteAccessRevision(6n, false);
    assert.equal(cache.size, 0);
    await cache.get(key(), async () => released('b', null));
    cache.noteAccessRevision(6n, true); // reconnected: whatever happened meanwhile is unknown
    assert.equal(cache.size, 0);
  });

  it('does not keep a release that was in flight when the cache was purged', async () => {
    const cache = new CredentialCache({ clock: new ManualClock(T0), maxSize: 10 });
    let finish!: (o: ReleaseOutcome) => void;
    const ask = cache.get(key(), () => new Promise((r) => (finish = r)));
    cache.noteAccessRevision(7n, false);
    finish(released('late', null));
    assert.equal(tokenOf(await ask), 'late'); // the server released it at that moment
    assert.equal(cache.size, 0);
  });

  it("drops a client's credentials when its entry is removed or changed", async () => {
    const cache = new CredentialCache({ clock: new ManualClock(T0), maxSize: 10 });
    await cache.get(key({ entryId: 'e1' }), async () => released('one', null));
    await cache.get(key({ entryId: 'e2' }), async () => released('two', null));
    await cache.get(key({ entryId: 'e3' }), async () => released('three', null));
    cache.retainEntries(
      new Map([
        ['e1', { revision: 1 }],
        ['e2', { revision: 2 }],
      ]),
    );
    assert.ok(cache.peek(key({ entryId: 'e1' })));
    assert.equal(cache.peek(key({ entryId: 'e2' })), undefined);
    assert.equal(cache.peek(key({ entryId: 'e3' })), undefined);
    assert.equal(cache.size, 1);
  });

  it('serves a credential inside its margin while the server is away, never past expiry', async () => {
    const clock = new ManualClock(T0);
    const cache = new CredentialCache({ clock, maxSize: 10 });
    await cache.get(key(), async () => released('t', clock.now() + 10 * MIN));
    const away = async (): Promise<ReleaseOutcome> => {
      throw new UnavailableError('the server does not answer');
    };
    clock.advance(10 * MIN - 1000);
    const s = await cache.get(key(), away);
    assert.equal(s.cached, true);
    assert.equal(tokenOf(s), 't');
    clock.advance(1000);
    await assert.rejects(cache.get(key(), away), /does not answer/);
  });

  it('holds at most maxSize credentials, dropping the oldest', async () => {
    const cache = new CredentialCache({ clock: new ManualClock(T0), maxSize: 2 });
    for (const s of ['a', 'b', 'c'])
      await cache.get(key({ server: s }), async () => released(s, null));
    assert.equal(cache.size, 2);
    assert.equal(cache.peek(key({ server: 'a' })), undefined);
    assert.ok(cache.peek(key({ server: 'c' })));
  });
});
