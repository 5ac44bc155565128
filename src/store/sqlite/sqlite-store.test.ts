import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeConformance } from '../conformance.ts';
import { openStore } from '../open.ts';
import { makeEntry } from '../conformance/fixtures.ts';

let dir = '';
let n = 0;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-sqlite-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

storeConformance('sqlite', () => openStore({ kind: 'sqlite', path: path.join(dir, `s${n++}.db`) }));

describe('sqlite store file', () => {
  it('creates the parent directory and a 0600 file, and keeps data across reopen', async () => {
    const file = path.join(dir, 'nested', 'deeper', 'tessera.db');
    const first = await openStore({ kind: 'sqlite', path: file });
    await first.entries.create(makeEntry(1));
    await first.close();
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const second = await openStore({ kind: 'sqlite', path: file });
    assert.deepEqual(await second.entries.get(makeEntry(1).id), makeEntry(1));
    await second.close();
  });

  it('fails to open a path it cannot create', async () => {
    // A regular file where a directory should be (not /proc: recursive mkdir loops there).
    const file = path.join(dir, 'plain-file');
    await writeFile(file, '');
    await assert.rejects(openStore({ kind: 'sqlite', path: path.join(file, 'x.db') }), {
      name: 'TesseraError',
    });
  });
});
