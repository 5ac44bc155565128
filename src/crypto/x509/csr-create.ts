// CSR creation for agents (they send a CSR per SVID, keeping the private key local) and tests.
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import { bitString, ctx, nul, oid, seq, set, smallInteger } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';
import { subjectAltNameExt } from './extensions.ts';
import { encodeName } from './name.ts';

interface CsrSigner {
  hash: string | null;
  algIdDer: Uint8Array;
}

function signerFor(key: KeyObject): CsrSigner {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && (curve === 'prime256v1' || curve === 'P-256')) {
    return { hash: 'sha256', algIdDer: seq(oid(OID.ecdsaSha256)) };
  }
  if (key.asymmetricKeyType === 'ec' && (curve === 'secp384r1' || curve === 'P-384')) {
    return { hash: 'sha384', algIdDer: seq(oid(OID.ecdsaSha384)) };
  }
  if (key.asymmetricKeyType === 'ec' && (curve === 'secp521r1' || curve === 'P-521')) {
    return { hash: 'sha512', algIdDer: seq(oid(OID.ecdsaSha512)) };
  }
  if (key.asymmetricKeyType === 'rsa')
    return { hash: 'sha256', algIdDer: seq(oid(OID.rsaSha256), nul()) };
  if (key.asymmetricKeyType === 'ed25519') return { hash: null, algIdDer: seq(oid(OID.ed25519)) };
  throw new InvalidArgumentError(
    `cannot create a CSR with a ${key.asymmetricKeyType ?? 'unknown'} key`,
  );
}

export interface CreateCsrOptions {
  readonly dnsNames?: readonly string[];
}

/** A DER CSR signed by `privateKey`, requesting `spiffeId` (if given) as its URI SAN. */
export function createCsr(
  privateKey: KeyObject,
  spiffeId?: string,
  opts: CreateCsrOptions = {},
): Uint8Array {
  if (privateKey.type !== 'private')
    throw new InvalidArgumentError('createCsr needs a private key');
  const s = signerFor(privateKey);
  const uris = spiffeId === undefined ? [] : [SpiffeId.parse(spiffeId).toString()];
  const dns = opts.dnsNames ?? [];
  const attrs =
    uris.length + dns.length > 0
      ? [seq(oid(OID.extensionRequest), set(seq(subjectAltNameExt(uris, dns, false))))]
      : [];
  const info = seq(
    smallInteger(0),
    encodeName([['O', 'Tessera']]),
    createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
    ctx(0, true, ...attrs),
  );
  return new Uint8Array(seq(info, s.algIdDer, bitString(sign(s.hash, info, privateKey))));
}
