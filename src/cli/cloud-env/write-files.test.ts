import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { writeEnvFiles } from './write-files.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-env-files-'));
const uid = process.getuid?.() ?? 0;
const doc = (n: number) => `${JSON.stringify({ type: 'external_account', n })}\n`;
const file = (name: string, content: string) => ({
  path: path.join(dir, name),
  content,
  flag: '--config-file',
});

describe('writing the files tessera cloud env names', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes 0600, and replaces a config of the same type', async () => {
    await writeEnvFiles([file('gcp.json', doc(1))], uid);
    const p = path.join(dir, 'gcp.json');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    await writeEnvFiles([file('gcp.json', doc(2))], uid);
    assert.equal(readFileSync(p, 'utf8'), doc(2));
  });

  it('refuses to replace anything else, and leaves it as it was', async () => {
    const key = path.join(dir, 'key.json');
    writeFileSync(key, '{"type": "service_account", "private_key": "k"}');
    const profile = path.join(dir, 'profile');
    writeFileSync(profile, 'export PATH=/usr/bin\n');
    symlinkSync(profile, path.join(dir, 'link.json'));
    for (const [name, why] of [
      ['key.json', /key\.json: exists and is not a config of type external_account; refusing/],
      ['profile', /profile: exists and is not a config of type external_account/],
      ['link.json', /link\.json: exists and is not a regular file/],
    ] as const) {
      await assert.rejects(writeEnvFiles([file(name, doc(3))], uid), why);
    }
    await assert.rejects(writeEnvFiles([file('gcp.json', doc(3))], uid + 1), /belongs to uid/);
    await assert.rejects(
      writeEnvFiles([{ path: 'rel.json', content: doc(1), flag: '--config-file' }], uid),
      /--config-file: rel\.json: not an absolute path/,
    );
    assert.equal(readFileSync(profile, 'utf8'), 'export PATH=/usr/bin\n');
    assert.match(readFileSync(key, 'utf8'), /service_account/);
  });
});
