// Per-key-type facts: how to generate, which hash signs, and recognising a type from a KeyObject.
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyType } from '../../core/authority.ts';
import { keyTypes } from '../../core/authority.ts';
import { InvalidArgumentError } from '../../core/errors.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

export const DEFAULT_KEY_TYPE: KeyType = 'ec-p256';

export function hashFor(type: KeyType): 'sha256' | 'sha384' {
  return type === 'ec-p384' ? 'sha384' : 'sha256';
}

export function isKeyType(v: unknown): v is KeyType {
  return typeof v === 'string' && (keyTypes as readonly string[]).includes(v);
}

export function assertKeyType(v: unknown): KeyType {
  if (!isKeyType(v)) {
    throw new InvalidArgumentError(
      `unsupported key type "${String(v)}" (supported: ${keyTypes.join(', ')})`,
    );
  }
  return v;
}

export async function generatePrivateKey(type: KeyType): Promise<KeyObject> {
  switch (assertKeyType(type)) {
    case 'ec-p256':
      return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
    case 'ec-p384':
      return (await generateKeyPairAsync('ec', { namedCurve: 'P-384' })).privateKey;
    case 'rsa-2048':
      return (await generateKeyPairAsync('rsa', { modulusLength: 2048 })).privateKey;
    case 'rsa-4096':
      return (await generateKeyPairAsync('rsa', { modulusLength: 4096 })).privateKey;
  }
}

/** The KeyType of a public or private KeyObject, or null when it is not one Tessera signs with. */
export function keyTypeOf(key: KeyObject): KeyType | null {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    if (d?.namedCurve === 'prime256v1' || d?.namedCurve === 'P-256') return 'ec-p256';
    if (d?.namedCurve === 'secp384r1' || d?.namedCurve === 'P-384') return 'ec-p384';
  }
  if (key.asymmetricKeyType === 'rsa') {
    if (d?.modulusLength === 2048) return 'rsa-2048';
    if (d?.modulusLength === 4096) return 'rsa-4096';
  }
  return null;
}

export function requireKeyTypeOf(key: KeyObject, what: string): KeyType {
  const t = keyTypeOf(key);
  if (t === null) {
    throw new InvalidArgumentError(
      `${what}: unsupported key (${key.asymmetricKeyType ?? 'unknown'}); supported: ${keyTypes.join(', ')}`,
    );
  }
  return t;
}
