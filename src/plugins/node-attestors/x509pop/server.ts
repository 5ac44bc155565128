// x509pop: the agent proves possession of a private key whose certificate chains to a CA the
// operator configured. Challenge–response: the server sends a fresh nonce, the agent signs it.
// Re-attestable: the same certificate may attest again (after eviction or SVID expiry).
import { X509Certificate, createHash, randomBytes, verify } from 'node:crypto';
import { InvalidArgumentError, PermissionDeniedError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import type { NodeAttestor } from '../node-attestor.ts';
import { verifyChainToRoots } from './chain.ts';
import { X509POP_CONTEXT, parseX509PopPayload } from './payload.ts';

export const X509POP_TYPE = 'x509pop';

export interface X509PopServerOptions {
  /** CA certificates agent certificates must chain to. */
  roots: readonly X509Certificate[];
  now: () => number;
}

export function createX509PopAttestor(o: X509PopServerOptions): NodeAttestor {
  if (o.roots.length === 0)
    throw new InvalidArgumentError('x509pop: ca_bundle_file holds no certificates');
  return {
    type: X509POP_TYPE,
    async attest(payload, challenge) {
      const chain = parseX509PopPayload(payload).map((der) => {
        try {
          return new X509Certificate(der);
        } catch {
          throw new PermissionDeniedError(
            'x509pop: a certificate in the payload could not be parsed',
          );
        }
      });
      const root = verifyChainToRoots(chain, o.roots, o.now());
      const leaf = chain[0] as X509Certificate;
      const nonce = randomBytes(32);
      const signature = await challenge(nonce);
      const signed = Buffer.concat([Buffer.from(X509POP_CONTEXT), nonce]);
      let ok = false;
      try {
        ok = verify(
          leaf.publicKey.asymmetricKeyType === 'ed25519' ? null : 'sha256',
          signed,
          leaf.publicKey,
          signature,
        );
      } catch {
        ok = false;
      }
      if (!ok)
        throw new PermissionDeniedError(
          'x509pop: challenge signature does not verify with the certificate key',
        );
      const fingerprint = sha1Hex(leaf.raw);
      return {
        idSegments: [fingerprint],
        selectors: selectorsOf(leaf, chain, root),
        canReattest: true,
      };
    },
  };
}

function selectorsOf(
  leaf: X509Certificate,
  chain: readonly X509Certificate[],
  root: X509Certificate,
): Selector[] {
  const out: Selector[] = [];
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1];
  if (cn) out.push({ type: X509POP_TYPE, value: `subject:cn:${cn}` });
  out.push({ type: X509POP_TYPE, value: `serialnumber:${leaf.serialNumber.toLowerCase()}` });
  for (const c of [...chain.slice(1), root])
    out.push({ type: X509POP_TYPE, value: `ca:fingerprint:${sha1Hex(c.raw)}` });
  return out;
}

function sha1Hex(der: Buffer): string {
  return createHash('sha1').update(der).digest('hex');
}
