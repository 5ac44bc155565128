// The audit checkpoint signing key: Ed25519, in the server's data dir (0600), never in the
// database — the point of a checkpoint is that whoever can rewrite the database cannot forge one.
import {
  type KeyObject,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
} from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { keyIdOf } from '../../core/audit-checkpoint.ts';
import { FailedPreconditionError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';

export interface CheckpointKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicPem: string;
  readonly keyId: string;
  /** True when this call generated it. */
  readonly created: boolean;
}

/** Loads the key, or creates it on first start. A key file others may read is refused. */
export async function loadOrCreateCheckpointKey(file: string): Promise<CheckpointKey> {
  let pem: string;
  let created = false;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0)
      throw new FailedPreconditionError(
        `audit checkpoint key ${file}: mode ${(st.mode & 0o777).toString(8)} lets others read it; chmod 600`,
      );
    pem = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await writeFileAtomic(file, pem, 0o600);
    created = true;
  }
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new FailedPreconditionError(`audit checkpoint key ${file}: not an Ed25519 key`);
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    keyId: keyIdOf(publicKey),
    created,
  };
}
