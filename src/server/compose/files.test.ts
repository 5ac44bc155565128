// The files the composition root reads for the `sts` block.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readCaFile } from './files.ts';

describe('sts.ca_file', () => {
  it('reads PEM certificates; a missing file or one without certificates is a config error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-ca-'));
    try {
      assert.deepEqual(readCaFile(''), []);
      assert.throws(
        () => readCaFile(path.join(dir, 'nope.pem')),
        /config: sts\.ca_file: cannot read/,
      );
      const empty = path.join(dir, 'empty.pem');
      writeFileSync(empty, 'not a certificate\n');
      assert.throws(() => readCaFile(empty), /holds no PEM certificate/);
      const two = path.join(dir, 'two.pem');
      const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
      writeFileSync(two, `${pem}\n${pem}\n`);
      assert.equal(readCaFile(two).length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
