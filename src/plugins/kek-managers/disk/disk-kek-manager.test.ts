import assert from 'node:assert/strict';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKekManager } from '../catalog.ts';
import { DiskKekManager, isKekFileName } from './disk-kek-manager.ts';

let root = '';
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tessera-kek-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const ID = '0123456789abcdef';
const AAD = new Uint8Array(Buffer.from('aad'));
const DEK = new Uint8Array(32).fill(9);

describe('disk KEK manager', () => {
  it('creates 0600 files in a 0700 directory, atomically; wraps and unwraps', async () => {
    const dir = path.join(root, 'a', 'secrets');
    const m = await DiskKekManager.create(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const check = await m.create(ID);
    assert.match(check, /^[0-9a-f]{64}$/);
    const file = path.join(dir, `kek-${ID}.key`);
    assert.equal(m.locate(ID), file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(await readFile(file, 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/);
    assert.deepEqual(await readdir(dir), [`kek-${ID}.key`], 'no temp file left');
    const w = await m.wrap(ID, DEK, AAD);
    // A new instance reads the key back from its file.
    const again = await DiskKekManager.create(dir);
    await again.verify(ID, check);
    assert.deepEqual(await again.unwrap(ID, w, AAD), DEK);
  });

  it('tightens a looser directory to 0700', async () => {
    const dir = path.join(root, 'loose');
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    await DiskKekManager.create(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
  });

  it('missing, wrong and malformed files are refused naming the file', async () => {
    const dir = path.join(root, 'b');
    const m = await DiskKekManager.create(dir);
    const file = m.locate(ID);
    await assert.rejects(m.verify(ID, 'x'), {
      name: 'FailedPreconditionError',
      message: `secret store: key-encryption key file ${file} is missing: restore it from a backup of the data directory (without it the secrets it wraps cannot be read)`,
    });
    const check = await m.create(ID);
    await assert.rejects(
      m.verify(
        ID,
        check.replace(/^./, (c) => (c === '0' ? '1' : '0')),
      ),
      {
        message: `secret store: key-encryption key file ${file} does not hold KEK ${ID} (its check value differs): restore the right file from a backup of the data directory`,
      },
    );
    await writeFile(file, 'short\n');
    await assert.rejects(m.verify(ID, check), {
      message: `secret store: key-encryption key file ${file} is not a KEK file (expected 32 bytes in base64): restore it from a backup of the data directory`,
    });
    await assert.rejects(m.wrap('../x', DEK, AAD), { name: 'InvalidArgumentError' });
  });

  it('destroy removes its own file only; a symlink or a missing file is left alone', async () => {
    const dir = path.join(root, 'c');
    const m = await DiskKekManager.create(dir);
    await m.create(ID);
    await m.destroy(ID);
    await m.destroy(ID);
    assert.deepEqual(await readdir(dir), []);
    const target = path.join(root, 'elsewhere');
    await writeFile(target, 'not ours');
    await symlink(target, m.locate(ID));
    await m.destroy(ID);
    assert.equal(await readFile(target, 'utf8'), 'not ours');
    assert.deepEqual(await readdir(dir), [`kek-${ID}.key`]);
  });

  it('file names; the catalog defaults to <data dir>/secrets and resolves relative dirs there', async () => {
    assert.equal(isKekFileName(`kek-${ID}.key`), true);
    assert.equal(isKekFileName(`kek-${ID}.key.bak`), false);
    assert.equal(isKekFileName('kek-XYZ.key'), false);
    const d = (await createKekManager({}, { dataDir: path.join(root, 'd') })) as DiskKekManager;
    assert.equal(d.dir, path.join(root, 'd', 'secrets'));
    const e = (await createKekManager(
      { disk: { dir: 'keks' } },
      { dataDir: path.join(root, 'e') },
    )) as DiskKekManager;
    assert.equal(e.dir, path.join(root, 'e', 'keks'));
  });
});
