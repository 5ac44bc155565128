// TPM2_MakeCredential done outside the TPM (TPM 2.0 Part 1 §24, "Credential Protection"): the
// server wraps a secret so that only the TPM holding the endorsement key can unwrap it, and only
// for the object whose Name it was made for (the attestation key) — TPM2_ActivateCredential then
// releases it. For an RSA EK with SHA-256 name algorithm and AES-CFB:
//   seed            = random(32)
//   encryptedSecret = RSA-OAEP(EK, seed, SHA-256, label "IDENTITY\0")
//   symKey          = KDFa(SHA-256, seed, "STORAGE", AK name, "", EK AES key bits)
//   encIdentity     = AES-CFB(symKey, IV 0, TPM2B_DIGEST(secret))
//   hmacKey         = KDFa(SHA-256, seed, "INTEGRITY", "", "", 256)
//   outerHMAC       = HMAC-SHA-256(hmacKey, encIdentity || AK name)
//   credentialBlob  = TPM2B_DIGEST(outerHMAC) || encIdentity
import {
  type KeyObject,
  constants,
  createCipheriv,
  createHmac,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';

/** KDFa (Part 1 §11.4.10.2) with SHA-256: counter mode HMAC, the label null-terminated. */
export function kdfa(
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Buffer {
  const out: Buffer[] = [];
  const bytes = Math.ceil(bits / 8);
  const lbits = Buffer.alloc(4);
  lbits.writeUInt32BE(bits);
  for (let i = 1, got = 0; got < bytes; i++, got += 32) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    out.push(
      createHmac('sha256', key)
        .update(counter)
        .update(Buffer.from(label + '\0', 'latin1'))
        .update(contextU)
        .update(contextV)
        .update(lbits)
        .digest(),
    );
  }
  return Buffer.concat(out).subarray(0, bytes);
}

export interface Credential {
  /** TPM2B_ID_OBJECT contents. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET contents. */
  readonly encryptedSecret: Buffer;
}

function sized(b: Uint8Array): Buffer {
  const n = Buffer.alloc(2);
  n.writeUInt16BE(b.length);
  return Buffer.concat([n, b]);
}

export function makeCredential(
  ek: KeyObject,
  ekAesBits: number,
  akName: Uint8Array,
  secret: Uint8Array,
  seed: Uint8Array = randomBytes(32),
): Credential {
  if (secret.length === 0 || secret.length > 32) throw new TypeError('secret must be 1..32 bytes');
  const encryptedSecret = publicEncrypt(
    {
      key: ek,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      oaepLabel: Buffer.from('IDENTITY\0', 'latin1'),
    },
    seed,
  );
  const symKey = kdfa(seed, 'STORAGE', akName, Buffer.alloc(0), ekAesBits);
  const c = createCipheriv(`aes-${ekAesBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([c.update(sized(secret)), c.final()]);
  const hmacKey = kdfa(seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256);
  const outerHmac = createHmac('sha256', hmacKey).update(encIdentity).update(akName).digest();
  return { credentialBlob: Buffer.concat([sized(outerHmac), encIdentity]), encryptedSecret };
}

/** The file tpm2_makecredential writes and tpm2_activatecredential reads (`-i`). */
export function encodeCredentialFile(c: Credential): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0xbadcc0de, 0);
  header.writeUInt32BE(1, 4);
  return Buffer.concat([header, sized(c.credentialBlob), sized(c.encryptedSecret)]);
}
