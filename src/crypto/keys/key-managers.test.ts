import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { KeyType } from '../../core/authority.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { KeyManager } from '../key-manager.ts';
import { DiskKeyManager } from './disk-key-manager.ts';
import { hashFor } from './key-types.ts';
import { MemoryKeyManager } from './memory-key-manager.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'tessera-keys-'));
  dirs.push(d);
  return path.join(d, 'keys');
}

const managers: Array<[string, () => Promise<KeyManager>]> = [
  ['memory', async () => new MemoryKeyManager()],
  ['disk', async () => DiskKeyManager.create(await tempDir())],
];

for (const [name, make] of managers) {
  describe(`${name} key manager`, () => {
    for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyType[]) {
      it(`generates and signs with ${type} (der and ieee-p1363)`, async () => {
        const km = await make();
        const key = await km.generate('k1', type);
        assert.equal(key.type, type);
        const data = Buffer.from('hello');
        for (const format of ['der', 'ieee-p1363'] as const) {
          const sig = await key.sign(data, format);
          const dsaEncoding = format;
          assert.ok(verify(hashFor(type), data, { key: key.publicKey, dsaEncoding }, sig));
          assert.ok(
            verify(
              hashFor(type),
              data,
              { key: key.publicKey, dsaEncoding },
              key.signSync!(data, format),
            ),
          );
        }
        if (type === 'ec-p256') assert.equal((await key.sign(data, 'ieee-p1363')).length, 64);
        if (type === 'ec-p384') assert.equal((await key.sign(data, 'ieee-p1363')).length, 96);
        assert.deepEqual(
          Buffer.from(key.publicKeyDer),
          key.publicKey.export({ type: 'spki', format: 'der' }),
        );
      });
    }

    it('gets, lists, replaces and deletes', async () => {
      const km = await make();
      assert.equal(await km.get('missing'), null);
      const a = await km.generate('b-key', 'ec-p256');
      await km.generate('a-key', 'ec-p256');
      assert.deepEqual(await km.list(), ['a-key', 'b-key']);
      assert.deepEqual((await km.get('b-key'))?.publicKeyDer, a.publicKeyDer);
      const replaced = await km.generate('b-key', 'ec-p384');
      assert.equal((await km.get('b-key'))?.type, 'ec-p384');
      assert.notDeepEqual(replaced.publicKeyDer, a.publicKeyDer);
      await km.delete('b-key');
      await km.delete('b-key');
      assert.deepEqual(await km.list(), ['a-key']);
    });

    it('rejects refs that could escape the key directory', async () => {
      const km = await make();
      for (const ref of ['', '../x', 'a/b', '.hidden', '..', 'a\\b', 'x'.repeat(129), 'a b']) {
        await assert.rejects(km.generate(ref, 'ec-p256'), InvalidArgumentError, ref);
        await assert.rejects(km.get(ref), InvalidArgumentError, ref);
      }
    });

    it('rejects unknown key types', async () => {
      const km = await make();
      await assert.rejects(km.generate('k', 'ec-p521' as KeyType), /unsupported key type/);
    });
  });
}

describe('disk key manager files', () => {
  it('writes 0600 PKCS#8 files in a 0700 directory and reloads them', async () => {
    const dir = await tempDir();
    const km = await DiskKeyManager.create(dir);
    const key = await km.generate('ca-1', 'ec-p256');
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(path.join(dir, 'ca-1.pem'))).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['ca-1.pem']);
    // a leftover temp file from a crash is never listed
    await writeFile(path.join(dir, '.ca-2.pem.tmp-abc'), 'x');
    const again = await DiskKeyManager.create(dir);
    assert.deepEqual(await again.list(), ['ca-1']);
    const loaded = await again.get('ca-1');
    assert.deepEqual(loaded?.publicKeyDer, key.publicKeyDer);
    assert.equal(loaded?.type, 'ec-p256');
  });
});
