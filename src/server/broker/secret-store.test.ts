// SecretStoreService over a real SQLite store and the real disk KEK manager in a temp directory.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { DiskKekManager } from '../../plugins/kek-managers/catalog.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { SecretStoreService } from './secret-store.ts';

const CTX: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'c1' };
const v = (s: string) => new Uint8Array(Buffer.from(s));
const str = (b: Uint8Array) => Buffer.from(b).toString();

let root = '';
let n = 0;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tessera-secrets-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Env {
  dir: string;
  kekDir: string;
  store: Store;
  clock: ManualClock;
  open(onRewrap?: () => void): Promise<SecretStoreService>;
  close(): Promise<void>;
  reopenStore(): Promise<void>;
}

async function env(): Promise<Env> {
  const dir = path.join(root, `e${n++}`);
  const kekDir = path.join(dir, 'secrets');
  const clock = new ManualClock(1_700_000_000_000);
  const e: Env = {
    dir,
    kekDir,
    clock,
    store: await openStore({ kind: 'sqlite', path: path.join(dir, 'db.sqlite3') }, clock),
    async open(onRewrap) {
      return SecretStoreService.create({
        store: e.store,
        kek: await DiskKekManager.create(kekDir),
        auditor: new Auditor(clock, e.store),
        clock,
        serverId: 'server-1',
        ...(onRewrap ? { onRewrap } : {}),
      });
    },
    close: () => e.store.close(),
    async reopenStore() {
      await e.store.close();
      e.store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db.sqlite3') }, clock);
    },
  };
  return e;
}

const kekFiles = async (e: Env) => (await readdir(e.kekDir)).filter((f) => f.endsWith('.key'));

describe('SecretStoreService', () => {
  it('a fresh store gets its first KEK with its first secret: a 0600 file and an active record, audited', async () => {
    const e = await env();
    const s = await e.open();
    assert.deepEqual(await kekFiles(e), [], 'no KEK before a secret is stored');
    assert.deepEqual(await e.store.secrets.listKeks(), []);
    await s.put(CTX, 'first', v('value'));
    const files = await kekFiles(e);
    assert.equal(files.length, 1);
    const keks = await e.store.secrets.listKeks();
    assert.deepEqual(
      keks.map((k) => [`kek-${k.id}.key`, k.state]),
      [[files[0], 'active']],
    );
    const audit = await e.store.audit.list({ action: 'secret.kek.create' }, 10);
    assert.equal(audit.length, 1);
    await e.close();
  });

  it('put, read, show, list, rotate (given value and same value), delete', async () => {
    const e = await env();
    const s = await e.open();
    const created = await s.put(CTX, 'db-password', v('hunter2'));
    assert.equal(created.currentVersion, 1);
    assert.equal(str(await s.read('db-password')), 'hunter2');
    assert.equal(await s.exists('db-password'), true);
    assert.equal(await s.exists('nope'), false);
    await s.put(CTX, 'db-password', v('hunter3'));
    assert.equal(str(await s.read('db-password')), 'hunter3');
    const r1 = await s.rotate(CTX, 'db-password');
    assert.equal(r1.currentVersion, 3);
    assert.equal(str(await s.read('db-password')), 'hunter3');
    await s.rotate(CTX, 'db-password', v('hunter4'));
    assert.equal(str(await s.read('db-password')), 'hunter4');
    const info = await s.get('db-password');
    assert.deepEqual(
      info.versions.map((x) => [x.version, x.size]),
      [
        [1, 7],
        [2, 7],
        [3, 7],
        [4, 7],
      ],
    );
    const rows = await e.store.secrets.versions('db-password');
    assert.notDeepEqual(rows[1]?.wrappedKey, rows[2]?.wrappedKey, 'rotate: a fresh data key');
    assert.deepEqual(
      (await s.list()).map((x) => x.name),
      ['db-password'],
    );
    await s.delete(CTX, 'db-password');
    await assert.rejects(s.read('db-password'), {
      name: 'NotFoundError',
      message: 'secret "db-password" not found',
    });
    await assert.rejects(s.rotate(CTX, 'db-password'), { name: 'NotFoundError' });
    await assert.rejects(s.delete(CTX, 'db-password'), { name: 'NotFoundError' });
    const actions = (await e.store.audit.list({}, 100)).map((r) => r.action);
    assert.deepEqual(actions, [
      'secret.kek.create',
      'secret.put',
      'secret.put',
      'secret.rotate',
      'secret.rotate',
      'secret.delete',
    ]);
    const text = JSON.stringify(await e.store.audit.list({}, 100));
    for (const secret of ['hunter', Buffer.from('hunter2').toString('base64')]) {
      assert.ok(!text.includes(secret), `audit holds ${secret}`);
    }
    await e.close();
  });

  it('bad input: a clear error, nothing stored', async () => {
    const e = await env();
    const s = await e.open();
    await assert.rejects(s.put(CTX, 'Bad Name', v('x')), {
      name: 'InvalidArgumentError',
      message: /^secret name "Bad Name": use 1-63 lowercase/,
    });
    await assert.rejects(s.put(CTX, 'big', new Uint8Array(64 * 1024 + 1)), {
      name: 'InvalidArgumentError',
      message: 'secret value: 65537 bytes, larger than the limit of 65536 bytes (64 KiB)',
    });
    await assert.rejects(s.put(CTX, 'empty', new Uint8Array(0)), {
      message: 'secret value: empty',
    });
    await s.put(CTX, 'max', new Uint8Array(64 * 1024).fill(7));
    assert.equal((await s.read('max')).length, 64 * 1024);
    assert.deepEqual(
      (await s.list()).map((x) => x.name),
      ['max'],
    );
    await e.close();
  });

  it('only the newest 10 versions are kept', async () => {
    const e = await env();
    const s = await e.open();
    for (let i = 1; i <= 12; i++) await s.put(CTX, 'a', v(`value ${i}`));
    const info = await s.get('a');
    assert.deepEqual(
      info.versions.map((x) => x.version),
      [3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    await e.close();
  });

  it('KEK rotation re-wraps every data key, retires and destroys the old KEK', async () => {
    const e = await env();
    const s = await e.open();
    for (let i = 0; i < 5; i++) await s.put(CTX, `s${i}`, v(`value ${i}`));
    const [oldFile] = await kekFiles(e);
    const r = await s.rotateKek(CTX);
    assert.equal(r.rewrapped, 5);
    assert.deepEqual(await kekFiles(e), [`kek-${r.kekId}.key`]);
    assert.notEqual(oldFile, `kek-${r.kekId}.key`);
    assert.deepEqual(
      (await e.store.secrets.listKeks()).map((k) => [k.id, k.state]),
      [[r.kekId, 'active']],
    );
    for (let i = 0; i < 5; i++) assert.equal(str(await s.read(`s${i}`)), `value ${i}`);
    assert.equal((await s.get('s0')).versions[0]?.kekId, r.kekId);
    const [rec] = await e.store.audit.list({ action: 'secret.kek.rotate' }, 10);
    assert.deepEqual(rec?.details, {
      kekId: r.kekId,
      previous: [oldFile?.slice(4, 20)],
      rewrapped: 5,
      resumed: false,
    });
    await e.close();
  });

  it('a rotation cut short is finished at the next start; every secret reads', async () => {
    const e = await env();
    const s = await e.open(
      (() => {
        let k = 0;
        return () => {
          if (++k === 3) throw new Error('crash');
        };
      })(),
    );
    for (let i = 0; i < 6; i++) await s.put(CTX, `s${i}`, v(`value ${i}`));
    await assert.rejects(s.rotateKek(CTX), { message: 'crash' });
    assert.equal((await kekFiles(e)).length, 2);
    await e.reopenStore();
    const again = await e.open();
    const keks = await e.store.secrets.listKeks();
    assert.deepEqual(
      keks.map((k) => k.state),
      ['active'],
    );
    assert.equal((await kekFiles(e)).length, 1);
    for (let i = 0; i < 6; i++) assert.equal(str(await again.read(`s${i}`)), `value ${i}`);
    const [rec] = await e.store.audit.list({ action: 'secret.kek.rotate' }, 10);
    assert.equal((rec?.details as { resumed: boolean }).resumed, true);
    await e.close();
  });

  it('a pending KEK without a check value is rolled back at start (its file removed)', async () => {
    const e = await env();
    const s = await e.open();
    await s.put(CTX, 'a', v('x'));
    const now = e.clock.now();
    const id = '00112233aabbccdd';
    await e.store.secrets.addKek({
      id,
      state: 'pending',
      owner: 'server-1',
      checkValue: '',
      createdAt: now,
      updatedAt: now,
    });
    await writeFile(path.join(e.kekDir, `kek-${id}.key`), 'half-made\n');
    const again = await e.open();
    assert.equal((await e.store.secrets.listKeks()).length, 1);
    assert.equal((await kekFiles(e)).length, 1);
    assert.equal(str(await again.read('a')), 'x');
    await e.close();
  });

  it("another server's pending KEK is left alone at start; a rotation waits for it", async () => {
    const e = await env();
    const s = await e.open();
    await s.put(CTX, 'a', v('x'));
    const now = e.clock.now();
    const id = 'aaaabbbbccccdddd';
    await e.store.secrets.addKek({
      id,
      state: 'pending',
      owner: 'server-2',
      checkValue: '',
      createdAt: now,
      updatedAt: now,
    });
    const again = await e.open();
    assert.deepEqual((await e.store.secrets.listKeks()).map((k) => [k.state, k.owner]).sort(), [
      ['active', 'server-1'],
      ['pending', 'server-2'],
    ]);
    await assert.rejects(again.rotateKek(CTX), {
      name: 'FailedPreconditionError',
      message: `secret store: a KEK rotation by server server-2 is in progress (KEK ${id}); try again when it has finished`,
    });
    assert.equal(str(await again.read('a')), 'x');
    await e.close();
  });

  it('a missing or wrong KEK file: start refused naming the file; a foreign file is left', async () => {
    const e = await env();
    const s = await e.open();
    await s.put(CTX, 'a', v('x'));
    const [name] = await kekFiles(e);
    const file = path.join(e.kekDir, name ?? '');
    const good = await readFile(file);
    await writeFile(path.join(e.kekDir, 'kek-ffffffffffffffff.key'), good);
    await rm(file);
    await assert.rejects(e.open(), {
      name: 'FailedPreconditionError',
      message: `secret store: key-encryption key file ${file} is missing: restore it from a backup of the data directory (without it the secrets it wraps cannot be read)`,
    });
    await writeFile(file, Buffer.alloc(32, 1).toString('base64') + '\n');
    await assert.rejects(e.open(), {
      name: 'FailedPreconditionError',
      message: new RegExp(`^secret store: key-encryption key file ${file} does not hold KEK`),
    });
    await writeFile(file, 'garbage');
    await assert.rejects(e.open(), { message: /is not a KEK file/ });
    await writeFile(file, good);
    const again = await e.open();
    assert.equal(str(await again.read('a')), 'x');
    assert.ok((await readdir(e.kekDir)).includes('kek-ffffffffffffffff.key'));
    await e.close();
  });
});
