// Makes new authorities: a key in the key manager plus, for X.509, a CA certificate that is
// self-signed or signed by the configured upstream CA.
import type { Authority, AuthorityKind, KeyType } from '../../core/authority.ts';
import type { KeyManager, ManagedKey } from '../../crypto/key-manager.ts';
import { createIntermediateCa, createSelfSignedCa, type UpstreamCa } from '../../crypto/x509/ca.ts';

export interface MadeAuthority {
  readonly key: ManagedKey;
  readonly keyType: KeyType;
  readonly publicKeyDer: Uint8Array;
  readonly certChainDer: readonly Uint8Array[];
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface AuthorityFactory {
  make(kind: AuthorityKind, keyRef: string, now: number): Promise<MadeAuthority>;
  /** The chain an X.509-SVID carries after its leaf: the CA and any upstream intermediates. */
  signingChain(a: Authority): Uint8Array[];
  /** The certificate that goes into the trust bundle for an X.509 authority. */
  bundleRoot(a: Authority): Uint8Array;
}

export interface AuthorityFactoryOptions {
  keys: KeyManager;
  trustDomain: string;
  x509: { keyType: KeyType; ttlMs: number; upstream: UpstreamCa | null };
  jwt: { keyType: KeyType; ttlMs: number };
}

/** CA certificates are backdated a little so that clock skew between hosts does not reject them. */
const BACKDATE_MS = 60_000;

export function createAuthorityFactory(o: AuthorityFactoryOptions): AuthorityFactory {
  return {
    async make(kind, keyRef, now) {
      const spec = kind === 'x509' ? o.x509 : o.jwt;
      const key = await o.keys.generate(keyRef, spec.keyType);
      const notBefore = now - BACKDATE_MS;
      let notAfter = now + spec.ttlMs;
      let certChainDer: Uint8Array[] = [];
      if (kind === 'x509') {
        if (o.x509.upstream) {
          const ca = await createIntermediateCa({
            key,
            trustDomain: o.trustDomain,
            notBefore,
            notAfter,
            upstream: o.x509.upstream,
          });
          certChainDer = [ca.der, ...o.x509.upstream.certChainDer];
          notAfter = ca.notAfter;
        } else {
          const ca = await createSelfSignedCa({
            key,
            trustDomain: o.trustDomain,
            notBefore,
            notAfter,
          });
          certChainDer = [ca.der];
          notAfter = ca.notAfter;
        }
      }
      return {
        key,
        keyType: spec.keyType,
        publicKeyDer: key.publicKeyDer,
        certChainDer,
        notBefore,
        notAfter,
      };
    },
    signingChain(a) {
      // With an upstream CA the chain is [CA, upstream intermediates...]; the upstream root stays out.
      return a.certChainDer.length > 1 ? a.certChainDer.slice(0, -1) : a.certChainDer.slice(0, 1);
    },
    bundleRoot(a) {
      const root = a.certChainDer[a.certChainDer.length - 1];
      if (!root) throw new Error(`x509 authority ${a.id} has no certificate`);
      return root;
    },
  };
}
