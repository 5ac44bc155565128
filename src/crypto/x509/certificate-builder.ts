// TBSCertificate assembly shared by the CA and SVID templates, and the final Certificate wrapper.
import { randomFillSync } from 'node:crypto';
import { bitString, ctx, seq, time, unsignedInteger } from '../der/der-writer.ts';

export interface TbsFields {
  readonly serial: Uint8Array;
  readonly algIdDer: Uint8Array;
  readonly issuerDer: Uint8Array;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly subjectDer: Uint8Array;
  readonly spkiDer: Uint8Array;
  readonly extensions: readonly Uint8Array[];
}

// version [0] EXPLICIT INTEGER 2 (v3)
const V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

export function buildTbs(f: TbsFields): Buffer {
  return seq(
    V3,
    unsignedInteger(f.serial),
    f.algIdDer,
    f.issuerDer,
    seq(time(f.notBefore), time(f.notAfter)),
    f.subjectDer,
    f.spkiDer,
    ctx(3, true, seq(...f.extensions)),
  );
}

/** What every issuing function returns: the certificate and the facts callers log and store. */
export interface IssuedCertificate {
  readonly der: Uint8Array;
  /** Lowercase hex, no leading zero bytes (as `openssl x509 -serial` prints it, lowercased). */
  readonly serialHex: string;
  /** Epoch ms (whole seconds), after any capping to the issuer's notAfter. */
  readonly notAfter: number;
}

export function assembleCertificate(
  tbs: Uint8Array,
  algIdDer: Uint8Array,
  signature: Uint8Array,
  serial: Uint8Array,
  notAfter: number,
): IssuedCertificate {
  return {
    der: new Uint8Array(seq(tbs, algIdDer, bitString(signature))),
    serialHex: serialHex(serial),
    notAfter: Math.floor(notAfter / 1000) * 1000,
  };
}

export function serialHex(serial: Uint8Array): string {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0) i++;
  return Buffer.from(serial.buffer, serial.byteOffset + i, serial.length - i).toString('hex');
}

// Random bytes come from a pool refilled in bulk: one CSPRNG call per 256 serials.
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

/**
 * A random positive 128-bit serial (16 random bytes read as unsigned; the DER INTEGER gets a 0x00
 * prefix when the top bit is set, so it is at most 17 octets, within RFC 5280's 20).
 */
export function randomSerial(): Uint8Array {
  if (poolOffset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const s = Uint8Array.from(pool.subarray(poolOffset, poolOffset + 16));
  poolOffset += 16;
  // All-zero would encode as 0, which RFC 5280 forbids; odds are 2^-128 but the fix is free.
  if (s.every((b) => b === 0)) s[15] = 1;
  return s;
}
