// tpm: the agent proves that an attestation key (AK) lives in the same TPM as an endorsement key
// (EK) whose certificate chains to a configured manufacturer CA. The server makes a credential
// for the AK's Name, encrypted to the EK (make-credential.ts); only that TPM, holding that AK,
// can activate it and return the secret. The agent ID is the SHA-256 of the EK public key (SPKI
// DER): spiffe://<td>/spire/agent/tpm/<hash>. Re-attestable: the EK never leaves the TPM, and
// every attestation has a fresh secret, so an old answer cannot be replayed.
import type { X509Certificate } from 'node:crypto';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError, PermissionDeniedError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import type { NodeAttestor } from '../node-attestor.ts';
import { parseEkCert, sha1Hex, sha256Hex, tpmDeviceInfo, verifyEkChain } from './ek-cert.ts';
import { encodeCredentialFile, makeCredential } from './make-credential.ts';
import { parseTpmPayload } from './payload.ts';
import { checkAttestationKey, checkEndorsementKey, parseTpm2bPublic } from './tpm-public.ts';

export const TPM_TYPE = 'tpm';

export interface TpmServerOptions {
  /** Manufacturer CA certificates (roots, or intermediates trusted as anchors). */
  readonly roots: readonly X509Certificate[];
  /** Manufacturer intermediates that may sit between an EK certificate and a root. */
  readonly intermediates?: readonly X509Certificate[];
  readonly now: () => number;
}

export function createTpmAttestor(o: TpmServerOptions): NodeAttestor {
  if (o.roots.length === 0)
    throw new InvalidArgumentError('tpm: ek_ca_bundle_file holds no certificates');
  return {
    type: TPM_TYPE,
    async attest(payload, challenge) {
      const p = parseTpmPayload(payload);
      const ek = parseTpm2bPublic(p.ekPub, 'ek_pub');
      const ekKey = checkEndorsementKey(ek);
      const ak = parseTpm2bPublic(p.akPub, 'ak_pub');
      checkAttestationKey(ak);
      const cert = parseEkCert(p.ekCert);
      const root = verifyEkChain(cert, o.roots, o.intermediates ?? [], o.now());
      const spki = ekKey.export({ format: 'der', type: 'spki' });
      if (!cert.publicKey.export({ format: 'der', type: 'spki' }).equals(spki))
        throw new PermissionDeniedError(
          'tpm: the EK certificate does not certify the presented EK',
        );
      const secret = randomBytes(32);
      const credential = makeCredential(ekKey, ek.symmetric.keyBits, ak.name, secret);
      const answer = Buffer.from(await challenge(encodeCredentialFile(credential)));
      if (answer.length !== secret.length || !timingSafeEqual(answer, secret))
        throw new PermissionDeniedError(
          'tpm: credential activation failed: the answer is not the secret made for the AK',
        );
      const hash = sha256Hex(spki);
      return { idSegments: [hash], selectors: selectorsOf(hash, cert, root), canReattest: true };
    },
  };
}

function selectorsOf(hash: string, cert: X509Certificate, root: X509Certificate): Selector[] {
  const s = (value: string): Selector => ({ type: TPM_TYPE, value });
  const info = tpmDeviceInfo(cert);
  return [
    s(`pub_hash:${hash}`),
    ...(info.manufacturer ? [s(`ek_cert:manufacturer:${info.manufacturer}`)] : []),
    ...(info.model ? [s(`ek_cert:model:${info.model}`)] : []),
    ...(info.version ? [s(`ek_cert:version:${info.version}`)] : []),
    s(`ek_cert:serialnumber:${cert.serialNumber.toLowerCase()}`),
    s(`ca:fingerprint:${sha1Hex(root.raw)}`),
  ];
}
