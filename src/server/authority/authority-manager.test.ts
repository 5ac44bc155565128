import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyChain } from '../../core/audit.ts';
import type { Authority, AuthorityKind } from '../../core/authority.ts';
import { rotationThresholds } from '../../core/authority.ts';
import type { Bundle } from '../../core/bundle.ts';
import { ManualClock } from '../../core/clock.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { createAuthorityFactory } from './authority-factory.ts';
import { AuthorityManager } from './authority-manager.ts';

const TD = 'example.org';
const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 0, 1);
const ADMIN: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'test-1' };
const KINDS = ['x509', 'jwt'] as const;

let dir = '';
let n = 0;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-authority-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Env {
  store: Store;
  keys: MemoryKeyManager;
  clock: ManualClock;
  events: string[];
  open: (o?: {
    publishDelayMs: number;
    sleep: (ms: number) => Promise<void>;
  }) => Promise<AuthorityManager>;
  bundle: () => Promise<Bundle>;
  actions: () => Promise<string[]>;
}

async function withEnv(fn: (env: Env) => Promise<void>): Promise<void> {
  const clock = new ManualClock(T0);
  const store = await openStore(
    { kind: 'sqlite', path: path.join(dir, `db${n++}.sqlite3`) },
    clock,
  );
  const keys = new MemoryKeyManager();
  const events: string[] = [];
  const factory = createAuthorityFactory({
    keys,
    trustDomain: TD,
    x509: { keyType: 'ec-p256', ttlMs: HOUR, upstream: null },
    jwt: { keyType: 'ec-p256', ttlMs: HOUR },
  });
  const env: Env = {
    store,
    keys,
    clock,
    events,
    open: (o) =>
      AuthorityManager.create({
        ...o,
        store,
        keys,
        factory,
        auditor: new Auditor(clock, store),
        clock,
        serverId: 'server-a',
        trustDomain: TD,
        refreshHintSeconds: 360,
        onChange: (kind, event) => events.push(`${kind}.${event}`),
      }),
    bundle: async () => {
      const b = await store.bundles.get(TD);
      assert.ok(b, 'the bundle exists');
      return b;
    },
    actions: async () => (await store.audit.list({}, 1000)).map((r) => r.action),
  };
  try {
    await fn(env);
  } finally {
    await store.close();
  }
}

function one(m: AuthorityManager, kind: AuthorityKind, status: Authority['status']): Authority {
  const found = m.list(kind).filter((a) => a.status === status);
  assert.equal(found.length, 1, `exactly one ${status} ${kind} authority`);
  return found[0] as Authority;
}

function statuses(m: AuthorityManager, kind: AuthorityKind): string[] {
  return m
    .list(kind)
    .map((a) => a.status)
    .sort();
}

function x509InBundle(b: Bundle, a: Authority): { tainted: boolean } | undefined {
  const der = Buffer.from(a.certChainDer[0] as Uint8Array);
  return b.x509Authorities.find((x) => Buffer.from(x.der).equals(der));
}

function jwtInBundle(b: Bundle, a: Authority): { tainted: boolean } | undefined {
  return b.jwtAuthorities.find((k) => k.kid === a.id);
}

function inBundle(b: Bundle, a: Authority) {
  return a.kind === 'x509' ? x509InBundle(b, a) : jwtInBundle(b, a);
}

describe('AuthorityManager bootstrap', () => {
  it('activates its first authorities only once they were published for the publish delay', async () => {
    await withEnv(async ({ open, bundle, clock, actions }) => {
      const slept: number[] = [];
      let published: Bundle | null = null;
      const m = await open({
        publishDelayMs: 2000,
        sleep: async (ms) => {
          // While it waits, both keys are in the stored bundle and nothing is active yet.
          published = await bundle();
          slept.push(ms);
          assert.deepEqual(await actions(), ['authority.x509.prepare', 'authority.jwt.prepare']);
          clock.advance(ms);
        },
      });
      assert.deepEqual(slept, [2000]);
      assert.equal(published!.x509Authorities.length, 1);
      assert.equal(published!.jwtAuthorities.length, 1);
      one(m, 'x509', 'active');
      one(m, 'jwt', 'active');
      // A restart with active authorities does not wait again.
      const again = await open({ publishDelayMs: 2000, sleep: async (ms) => void slept.push(ms) });
      assert.deepEqual(slept, [2000]);
      one(again, 'jwt', 'active');
    });
  });

  it('creates one active x509 and one active jwt authority and publishes both', async () => {
    await withEnv(async ({ open, bundle, keys, actions, events }) => {
      const m = await open();
      const x = one(m, 'x509', 'active');
      const j = one(m, 'jwt', 'active');
      assert.equal(m.list().length, 2);
      assert.deepEqual(m.activeX509().authority, x);
      assert.deepEqual(m.activeJwt().authority, j);

      // The CA certificate is a real CA for the trust domain, living for the configured TTL.
      const cert = new X509Certificate(Buffer.from(x.certChainDer[0] as Uint8Array));
      assert.equal(cert.ca, true);
      assert.equal(cert.subjectAltName, `URI:spiffe://${TD}`);
      assert.equal(x.notAfter, T0 + HOUR);
      assert.equal(x.notBefore, T0 - 60_000);
      assert.equal(j.notAfter, T0 + HOUR);
      assert.deepEqual(m.activeX509().chainDer, [x.certChainDer[0]]);

      const b = await bundle();
      assert.equal(b.x509Authorities.length, 1);
      assert.deepEqual(x509InBundle(b, x), { der: x.certChainDer[0], tainted: false });
      assert.deepEqual(b.jwtAuthorities, [
        { kid: j.id, publicKeyDer: j.publicKeyDer, expiresAt: j.notAfter, tainted: false },
      ]);
      assert.equal(b.refreshHint, 360);
      assert.ok(b.sequence > 0);

      assert.deepEqual((await keys.list()).sort(), [x.keyRef, j.keyRef].sort());
      // Both published first, then both activated (after the publish delay, 0 here).
      assert.deepEqual(await actions(), [
        'authority.x509.prepare',
        'authority.jwt.prepare',
        'authority.x509.activate',
        'authority.jwt.activate',
      ]);
      assert.deepEqual(events, ['x509.prepare', 'jwt.prepare', 'x509.activate', 'jwt.activate']);
    });
  });

  it('restarts on the same store and key manager without creating authorities', async () => {
    await withEnv(async ({ open, bundle, keys, actions, clock }) => {
      const first = await open();
      const before = first.list();
      const b1 = await bundle();
      const audit1 = await actions();
      clock.advance(60_000);
      const second = await open();
      assert.deepEqual(second.list(), before);
      assert.deepEqual(await bundle(), b1);
      assert.deepEqual(await actions(), audit1);
      assert.equal((await keys.list()).length, 2);
      // The restarted manager can sign with the keys it found.
      const sig = await second.activeJwt().key.sign(new Uint8Array([1, 2, 3]), 'ieee-p1363');
      assert.equal(sig.length, 64);
    });
  });

  it("never deletes a key file its own journal does not mention (another server's, another datastore's)", async () => {
    await withEnv(async ({ open, keys }) => {
      const foreign = `x509-${'ab'.repeat(16)}`;
      await keys.generate(foreign, 'ec-p256');
      await keys.generate('unrelated-key', 'ec-p256');
      const m = await open();
      const refs = await keys.list();
      assert.ok(refs.includes(foreign), 'a key this datastore never heard of stays');
      assert.ok(refs.includes('unrelated-key'));
      assert.equal(refs.length, 4);
      assert.equal(m.list().length, 2);
    });
  });

  it('deletes at start a key whose generation began but never committed (crash in between)', async () => {
    await withEnv(async ({ open, keys, store, clock }) => {
      const crashed = `jwt-${'cd'.repeat(16)}`;
      await store.keyJournal.set('server-a', crashed, 'pending', clock.now());
      await keys.generate(crashed, 'ec-p256');
      // The same key pending in another server's journal is not this server's to judge.
      await store.keyJournal.set('server-b', `jwt-${'ef'.repeat(16)}`, 'pending', clock.now());
      await keys.generate(`jwt-${'ef'.repeat(16)}`, 'ec-p256');
      const m = await open();
      const refs = await keys.list();
      assert.ok(!refs.includes(crashed));
      assert.ok(refs.includes(`jwt-${'ef'.repeat(16)}`));
      assert.deepEqual(
        (await store.keyJournal.list('server-a')).map((r) => [r.keyRef, r.state]).sort(),
        m
          .list()
          .map((a) => [a.keyRef, 'committed'])
          .sort(),
      );
    });
  });

  it('deletes a retired key, and one left retired by a crash before its file went', async () => {
    await withEnv(async ({ open, keys, store, clock }) => {
      const m = await open();
      const first = one(m, 'x509', 'active');
      await m.prepare('x509', ADMIN);
      await m.activate('x509', '', ADMIN);
      clock.advance(2 * HOUR);
      await m.rotate();
      assert.ok(!m.list().some((a) => a.id === first.id), 'pruned past its life');
      assert.ok(!(await keys.list()).includes(first.keyRef));
      assert.ok(!(await store.keyJournal.list('server-a')).some((r) => r.keyRef === first.keyRef));
      // A crash between the retiring transaction and the file deletion: start-up finishes it.
      const left = `x509-${'12'.repeat(16)}`;
      await keys.generate(left, 'ec-p256');
      await store.keyJournal.set('server-a', left, 'retired', clock.now());
      await open();
      assert.ok(!(await keys.list()).includes(left));
      assert.ok(!(await store.keyJournal.list('server-a')).some((r) => r.keyRef === left));
    });
  });

  it('names the missing key file and what to do about it', async () => {
    await withEnv(async ({ open, keys }) => {
      const m = await open();
      const active = one(m, 'jwt', 'active');
      await keys.delete(active.keyRef);
      const again = await open();
      assert.throws(() => again.activeJwt(), {
        name: 'MissingAuthorityKeyError',
        code: 'failed_precondition',
        message:
          `the private key of the active jwt authority ${active.id} is missing from process memory ` +
          `(key_manager: memory; ${active.keyRef} is gone with the process): restore that file from ` +
          'a backup (and restart the server), or replace the authority: ' +
          '`tessera authority prepare --kind jwt` then `tessera authority activate --kind jwt`',
      });
    });
  });
});

describe('AuthorityManager rotation by time', () => {
  it('prepares at life/2 (published first), activates at life/6, prunes after expiry', async () => {
    await withEnv(async ({ open, bundle, clock, keys, store, actions }) => {
      const m = await open();
      for (const kind of KINDS) {
        const first = one(m, kind, 'active');
        const t = rotationThresholds(first);
        assert.equal(t.prepareAt, first.notAfter - (HOUR + 60_000) / 2);
        assert.equal(t.activateAt, first.notAfter - (HOUR + 60_000) / 6);
      }
      const x1 = one(m, 'x509', 'active');
      const j1 = one(m, 'jwt', 'active');
      const t = rotationThresholds(x1);
      const seq0 = (await bundle()).sequence;

      // Just before life/2: nothing happens.
      clock.set(t.prepareAt - 1);
      await m.rotate();
      assert.equal(m.list().length, 2);
      assert.equal((await bundle()).sequence, seq0);

      // At life/2 left: the next authorities are prepared and already in the bundle.
      clock.set(t.prepareAt);
      await m.rotate();
      const x2 = one(m, 'x509', 'prepared');
      const j2 = one(m, 'jwt', 'prepared');
      assert.equal(one(m, 'x509', 'active').id, x1.id);
      assert.equal(one(m, 'jwt', 'active').id, j1.id);
      const b1 = await bundle();
      assert.equal(b1.x509Authorities.length, 2);
      assert.equal(b1.jwtAuthorities.length, 2);
      assert.ok(inBundle(b1, x2) && inBundle(b1, j2), 'published before activation');
      assert.ok(b1.sequence > seq0);
      assert.equal(m.activeX509().authority.id, x1.id, 'the active one still signs');

      // Idempotent between thresholds.
      await m.rotate();
      assert.equal(m.list().length, 4);
      assert.equal((await bundle()).sequence, b1.sequence);

      // At life/6 left: the prepared ones become active, the previous ones old.
      clock.set(t.activateAt);
      await m.rotate();
      assert.equal(one(m, 'x509', 'active').id, x2.id);
      assert.equal(one(m, 'x509', 'old').id, x1.id);
      assert.equal(one(m, 'jwt', 'active').id, j2.id);
      assert.equal(one(m, 'jwt', 'old').id, j1.id);
      assert.equal(m.activeX509().authority.id, x2.id);
      assert.equal(m.activeJwt().authority.id, j2.id);
      const b2 = await bundle();
      assert.ok(inBundle(b2, x1) && inBundle(b2, j1), 'old keys still verify');

      // Past the old ones' notAfter: they leave the store, the bundle and the key manager.
      clock.set(x1.notAfter + 1);
      await m.rotate();
      for (const old of [x1, j1]) {
        assert.equal(await store.authorities.get(old.kind, old.id), null);
        assert.equal(await keys.get(old.keyRef), null);
        assert.ok(!m.list().some((a) => a.id === old.id));
      }
      const b3 = await bundle();
      assert.equal(inBundle(b3, x1), undefined);
      assert.equal(inBundle(b3, j1), undefined);
      assert.ok(inBundle(b3, x2) && inBundle(b3, j2));
      assert.ok(b3.sequence > b2.sequence);

      const log = await actions();
      for (const kind of KINDS) {
        assert.ok(log.includes(`authority.${kind}.prune`));
        assert.equal(log.filter((a) => a === `authority.${kind}.activate`).length, 2);
      }
    });
  });

  it('the bundle sequence increases with every bundle change', async () => {
    await withEnv(async ({ open, bundle }) => {
      const m = await open();
      const seqs = [(await bundle()).sequence];
      await m.prepare('x509', ADMIN);
      seqs.push((await bundle()).sequence);
      await m.activate('x509', '', ADMIN);
      await m.taint('x509', '', ADMIN);
      seqs.push((await bundle()).sequence);
      await m.revoke('x509', '', ADMIN);
      seqs.push((await bundle()).sequence);
      for (let i = 1; i < seqs.length; i++) {
        assert.ok((seqs[i] as number) > (seqs[i - 1] as number), `sequence ${seqs.join(', ')}`);
      }
    });
  });
});

describe('AuthorityManager forced rotation', () => {
  for (const kind of KINDS) {
    it(`${kind}: prepare → activate → taint → revoke`, async () => {
      await withEnv(async ({ open, bundle, keys, store, actions }) => {
        const m = await open();
        const first = one(m, kind, 'active');

        const next = await m.prepare(kind, ADMIN);
        assert.equal(next.status, 'prepared');
        assert.deepEqual(inBundle(await bundle(), next)?.tainted, false);

        const activated = await m.activate(kind, next.id, ADMIN);
        assert.equal(activated.status, 'active');
        assert.equal(one(m, kind, 'old').id, first.id);

        const tainted = await m.taint(kind, '', ADMIN);
        assert.equal(tainted.id, first.id);
        assert.equal(tainted.tainted, true);
        assert.equal((await store.authorities.get(kind, first.id))?.tainted, true);
        assert.equal(inBundle(await bundle(), first)?.tainted, true);
        assert.equal(inBundle(await bundle(), next)?.tainted, false);

        const revoked = await m.revoke(kind, first.id, ADMIN);
        assert.equal(revoked.id, first.id);
        assert.equal(inBundle(await bundle(), first), undefined);
        assert.ok(inBundle(await bundle(), next));
        assert.equal(await store.authorities.get(kind, first.id), null);
        assert.equal(await keys.get(first.keyRef), null);
        assert.deepEqual(statuses(m, kind), ['active']);

        const log = (await store.audit.list({}, 1000)).filter((r) => r.correlationId === 'test-1');
        assert.deepEqual(
          log.map((r) => [r.action, r.actor, r.target]),
          [
            [`authority.${kind}.prepare`, 'local-admin', next.id],
            [`authority.${kind}.activate`, 'local-admin', next.id],
            [`authority.${kind}.taint`, 'local-admin', first.id],
            [`authority.${kind}.revoke`, 'local-admin', first.id],
          ],
        );
        assert.ok((await actions()).every((a) => a.startsWith('authority.')));
        const chain = verifyChain(await store.audit.list({}, 1000));
        assert.equal(chain.ok, true, 'the audit records form an intact hash chain');
      });
    });
  }

  it('a second prepare replaces the prepared authority everywhere', async () => {
    await withEnv(async ({ open, bundle, keys }) => {
      const m = await open();
      const p1 = await m.prepare('jwt', ADMIN);
      const p2 = await m.prepare('jwt', ADMIN);
      assert.notEqual(p1.id, p2.id);
      assert.deepEqual(statuses(m, 'jwt'), ['active', 'prepared']);
      assert.equal(one(m, 'jwt', 'prepared').id, p2.id);
      assert.equal(jwtInBundle(await bundle(), p1), undefined);
      assert.equal(await keys.get(p1.keyRef), null);
    });
  });

  it('refuses to activate with nothing prepared', async () => {
    await withEnv(async ({ open }) => {
      const m = await open();
      await assert.rejects(m.activate('x509', '', ADMIN), {
        name: 'FailedPreconditionError',
        message: 'no prepared x509 authority: run prepare first',
      });
      const active = one(m, 'jwt', 'active');
      await assert.rejects(m.activate('jwt', active.id, ADMIN), {
        name: 'FailedPreconditionError',
        message: `no prepared jwt authority with id ${active.id}: run prepare first`,
      });
    });
  });

  it('refuses to taint the active authority, or twice', async () => {
    await withEnv(async ({ open }) => {
      const m = await open();
      const active = one(m, 'x509', 'active');
      await assert.rejects(m.taint('x509', active.id, ADMIN), {
        name: 'FailedPreconditionError',
        message: `only an old x509 authority can be tainted; ${active.id} is active: activate a new one first`,
      });
      await assert.rejects(m.taint('x509', '', ADMIN), {
        name: 'NotFoundError',
        message: 'no old x509 authority to taint',
      });
      await m.prepare('x509', ADMIN);
      await m.activate('x509', '', ADMIN);
      await m.taint('x509', active.id, ADMIN);
      await assert.rejects(m.taint('x509', active.id, ADMIN), {
        name: 'FailedPreconditionError',
        message: `x509 authority ${active.id} is already tainted`,
      });
    });
  });

  it('refuses to revoke an untainted authority', async () => {
    await withEnv(async ({ open, bundle }) => {
      const m = await open();
      const active = one(m, 'jwt', 'active');
      await assert.rejects(m.revoke('jwt', active.id, ADMIN), {
        name: 'FailedPreconditionError',
        message: `jwt authority ${active.id} must be tainted before it is revoked`,
      });
      await assert.rejects(m.revoke('jwt', '', ADMIN), {
        name: 'NotFoundError',
        message: 'no tainted jwt authority to revoke',
      });
      assert.ok(jwtInBundle(await bundle(), active));
    });
  });

  it('rejects malformed and unknown ids', async () => {
    await withEnv(async ({ open }) => {
      const m = await open();
      await assert.rejects(m.taint('x509', '../etc', ADMIN), {
        name: 'InvalidArgumentError',
        message: 'invalid authority id "../etc"',
      });
      await assert.rejects(m.revoke('x509', 'f'.repeat(32), ADMIN), {
        name: 'NotFoundError',
        message: `no tainted x509 authority with id ${'f'.repeat(32)} to revoke`,
      });
      // An x509 id is not a jwt id.
      const x = one(m, 'x509', 'active');
      await assert.rejects(m.taint('jwt', x.id, ADMIN), {
        name: 'NotFoundError',
        message: `no old jwt authority with id ${x.id} to taint`,
      });
    });
  });

  it('keeps state across a restart in the middle of a forced rotation', async () => {
    await withEnv(async ({ open, bundle }) => {
      const m = await open();
      const first = one(m, 'x509', 'active');
      await m.prepare('x509', ADMIN);
      await m.activate('x509', '', ADMIN);
      await m.taint('x509', '', ADMIN);
      const b = await bundle();
      const again = await open();
      assert.deepEqual(again.list(), m.list());
      assert.deepEqual(await bundle(), b);
      const revoked = await again.revoke('x509', '', ADMIN);
      assert.equal(revoked.id, first.id);
    });
  });
});
