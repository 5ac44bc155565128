import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  KEY_FILE,
  identityHeaderFor,
  identityHeaderMatches,
  loadIdentityHeaderKey,
} from './identity-header.ts';

describe('App Service identity header', () => {
  it('keeps one key (0600) across restarts and binds the header to the uid', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-idh-'));
    try {
      const key = loadIdentityHeaderKey(dir);
      assert.equal(statSync(path.join(dir, KEY_FILE)).mode & 0o777, 0o600);
      assert.deepEqual(loadIdentityHeaderKey(dir), key);
      const h = identityHeaderFor(key, 1000);
      assert.match(h, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(identityHeaderMatches(key, 1000, h));
      assert.ok(!identityHeaderMatches(key, 1001, h));
      assert.ok(!identityHeaderMatches(key, 1000, h.slice(1)));
      writeFileSync(path.join(dir, KEY_FILE), 'short');
      assert.throws(() => loadIdentityHeaderKey(dir), /not a 32-byte key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
