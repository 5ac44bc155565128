// The password proofs of MySQL's authentication plugins (MySQL source docs, "Authentication
// Methods"). Pure: node:crypto computation only.
import { constants, createHash, publicEncrypt, randomInt } from 'node:crypto';

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i += 1) out[i] = (a[i] ?? 0) ^ (b[i % b.length] ?? 0);
  return out;
}

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); empty for "". */
export function nativePasswordProof(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha1(Buffer.from(password));
  return xor(stage1, sha1(scramble, sha1(stage1)));
}

/** caching_sha2_password: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble); empty for "". */
export function cachingSha2Proof(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha256(Buffer.from(password));
  return xor(stage1, sha256(sha256(stage1), scramble));
}

/**
 * caching_sha2_password's full authentication without TLS: (password + NUL) XOR the scramble,
 * encrypted with RSA-OAEP (SHA-1, as the server's RSA_PKCS1_OAEP_PADDING) to the server's key.
 */
export function rsaEncryptedPassword(
  password: string,
  scramble: Buffer,
  publicKeyPem: string,
): Buffer {
  const plain = xor(Buffer.concat([Buffer.from(password), Buffer.alloc(1)]), scramble);
  return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING }, plain);
}

/** A fresh 20-byte challenge of printable ASCII (no NUL: some clients read it as a string). */
export function freshScramble(): Buffer {
  const b = Buffer.alloc(20);
  for (let i = 0; i < b.length; i += 1) b[i] = randomInt(0x21, 0x7f);
  return b;
}
