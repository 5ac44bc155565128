// A ManagedKey backed by a private KeyObject in process memory (memory and disk managers).
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import type { KeyType } from '../../core/authority.ts';
import { ecdsaDerToP1363 } from '../ecdsa-signature.ts';
import type { ManagedKey, SignatureFormat } from '../key-manager.ts';
import { hashFor, requireKeyTypeOf } from './key-types.ts';

export function localKey(ref: string, privateKey: KeyObject): ManagedKey {
  const type: KeyType = requireKeyTypeOf(privateKey, `key "${ref}"`);
  const hash = hashFor(type);
  const isEc = type.startsWith('ec-');
  const publicKey = createPublicKey(privateKey);
  const publicKeyDer = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const coordBytes = type === 'ec-p384' ? 48 : 32;
  // P1363 is produced from DER in JS: node's own ieee-p1363 path is much slower (see ecdsa-signature.ts).
  const signSync = (data: Uint8Array, format: SignatureFormat): Uint8Array => {
    const sig = sign(hash, data, privateKey);
    return isEc && format === 'ieee-p1363' ? ecdsaDerToP1363(sig, coordBytes) : sig;
  };
  return {
    ref,
    type,
    publicKey,
    publicKeyDer,
    signSync,
    sign: async (data, format) => signSync(data, format),
  };
}

/** The private KeyObject must stay inside this module family; exported for the disk manager. */
export function exportPkcs8Pem(privateKey: KeyObject): string {
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}
