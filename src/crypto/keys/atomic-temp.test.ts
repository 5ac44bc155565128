// The temp names of interrupted atomic writes: exactly the writer's own pattern is recognised, and
// only files provably ours are removed.
import assert from 'node:assert/strict';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import fsPromises from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { atomicTempName, atomicTempTarget, removeInterruptedWrites } from './atomic-temp.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { isKeyFileName } from './disk-key-manager.ts';

const UID = process.getuid?.() ?? 0;
const root = mkdtempSync(path.join(tmpdir(), 'tessera-atomic-temp-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('atomic temp names', () => {
  it('recognises exactly `.<target>.tmp-<12 lowercase hex>`', () => {
    assert.equal(atomicTempName('x509-1.pem', '0123456789ab'), '.x509-1.pem.tmp-0123456789ab');
    assert.equal(atomicTempTarget('.x509-1.pem.tmp-0123456789ab'), 'x509-1.pem');
    assert.equal(atomicTempTarget('.sync-state.json.tmp-ffffffffffff'), 'sync-state.json');
    for (const name of [
      'x509-1.pem', // the target itself
      'x509-1.pem.tmp-0123456789ab', // no leading dot
      '.x509-1.pem.tmp-0123456789a', // 11 hex
      '.x509-1.pem.tmp-0123456789abc', // 13 hex
      '.x509-1.pem.tmp-0123456789AB', // upper case: not what the writer makes
      '.x509-1.pem.tmp-0123456789ag', // not hex
      '.x509-1.pem.tmp-0123456789ab~', // an editor's backup
      '.x509-1.pem.tmp-0123456789ab.bak',
      '.x509-1.pem.temp-0123456789ab',
      '..tmp-0123456789ab', // no target
      '.tmp-0123456789ab',
    ]) {
      assert.equal(atomicTempTarget(name), null, name);
    }
  });

  it('is the name writeFileAtomic uses (seen by interrupting it before the rename)', async () => {
    const dir = path.join(root, 'writer');
    mkdirSync(dir);
    const file = path.join(dir, 'x509-7.pem');
    // The rename is where a kill leaves the temp behind: stop there and read the temp's name.
    let temp = '';
    const rename = mock.method(fsPromises, 'rename', async (from: string) => {
      temp = from;
      throw new Error('interrupted');
    });
    syncBuiltinESMExports();
    try {
      await assert.rejects(writeFileAtomic(file, 'key', 0o600), /interrupted/);
    } finally {
      rename.mock.restore();
      syncBuiltinESMExports();
    }
    assert.equal(path.dirname(temp), dir);
    assert.equal(atomicTempTarget(path.basename(temp)), 'x509-7.pem');
  });
});

describe('removing interrupted writes', () => {
  const keyLike =
    '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';

  it('removes our temp files of our targets, and nothing else', async () => {
    const dir = path.join(root, 'keys');
    mkdirSync(dir, { mode: 0o700 });
    const ours = ['.x509-1.pem.tmp-0123456789ab', '.jwt-2.pem.tmp-abcdefabcdef'];
    const others = [
      'x509-1.pem', // a key
      '.x509-1.pem.tmp-0123456789abc', // a look-alike
      '.x509-1.pem.tmp-0123456789AB',
      '.notes.txt.tmp-0123456789ab', // our pattern, not one of our files
      '..pem.tmp-0123456789ab', // target ".pem": not a valid key ref
    ];
    for (const n of [...ours, ...others])
      writeFileSync(path.join(dir, n), keyLike, { mode: 0o600 });
    // Matching names that are not our regular files: a directory, a symlink, another uid's file.
    mkdirSync(path.join(dir, '.dir-3.pem.tmp-0123456789ab'));
    const outside = path.join(root, 'outside.pem');
    writeFileSync(outside, keyLike);
    symlinkSync(outside, path.join(dir, '.link-4.pem.tmp-0123456789ab'));
    const foreign = path.join(dir, '.foreign-5.pem.tmp-0123456789ab');
    writeFileSync(foreign, keyLike, { mode: 0o600 });
    chownSync(foreign, 4321, 4321);

    const r = await removeInterruptedWrites(dir, isKeyFileName, UID);
    assert.deepEqual(r.removed.sort(), ours.map((n) => path.join(dir, n)).sort());
    assert.deepEqual(
      r.kept.sort((a, b) => a.file.localeCompare(b.file)),
      [
        { file: path.join(dir, '.dir-3.pem.tmp-0123456789ab'), reason: 'not a regular file' },
        { file: foreign, reason: `owned by uid 4321, not ${UID}` },
        { file: path.join(dir, '.link-4.pem.tmp-0123456789ab'), reason: 'not a regular file' },
      ],
    );
    assert.deepEqual(
      readdirSync(dir).sort(),
      [
        ...others,
        '.dir-3.pem.tmp-0123456789ab',
        '.link-4.pem.tmp-0123456789ab',
        '.foreign-5.pem.tmp-0123456789ab',
      ].sort(),
    );
    assert.ok(existsSync(outside), 'the symlink target is untouched');
  });

  it('leaves a directory that is a symlink or another uid’s alone; a missing one is fine', async () => {
    const real = path.join(root, 'real');
    mkdirSync(real);
    const temp = path.join(real, '.x509-1.pem.tmp-0123456789ab');
    writeFileSync(temp, keyLike, { mode: 0o600 });
    const link = path.join(root, 'link');
    symlinkSync(real, link);
    assert.deepEqual(await removeInterruptedWrites(link, isKeyFileName, UID), {
      removed: [],
      kept: [],
    });
    assert.deepEqual(await removeInterruptedWrites(real, isKeyFileName, 4321), {
      removed: [],
      kept: [],
    });
    assert.ok(existsSync(temp));
    assert.deepEqual(
      await removeInterruptedWrites(path.join(root, 'missing'), isKeyFileName, UID),
      { removed: [], kept: [] },
    );
  });
});
