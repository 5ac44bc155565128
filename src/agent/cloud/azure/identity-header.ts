// The App Service `IDENTITY_HEADER` secret, per caller: HMAC-SHA256 under a key kept in the
// agent's data dir (0600, made on first start) over the caller's uid. `tessera cloud env --cloud
// azure --azure-source app-service` fetches it for its own uid; the token endpoint recomputes it
// for the attested caller and compares in constant time — so a header copied from another user's
// environment, or guessed, gets nothing, and it survives agent restarts as env values must.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';

export const KEY_FILE = 'cloud/azure-identity-header.key';
const KEY_BYTES = 32;

/** The key from `<dataDir>/cloud/azure-identity-header.key`, made (0600) when absent. */
export function loadIdentityHeaderKey(dataDir: string): Buffer {
  const file = path.join(dataDir, KEY_FILE);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, randomBytes(KEY_BYTES).toString('base64url'));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  chmodSync(file, 0o600);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  if (key.length !== KEY_BYTES) {
    throw new Error(`${file}: not a ${KEY_BYTES}-byte key (delete it to make a new one)`);
  }
  return key;
}

/** The header value of a caller running as `uid`. */
export function identityHeaderFor(key: Buffer, uid: number): string {
  return createHmac('sha256', key)
    .update(`tessera-azure-identity-header\n${uid}`)
    .digest('base64url');
}

/** Whether `presented` is the header of `uid`, compared in constant time. */
export function identityHeaderMatches(key: Buffer, uid: number, presented: string): boolean {
  const want = Buffer.from(identityHeaderFor(key, uid));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}
