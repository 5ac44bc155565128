// Sources that do not talk to a Workload API: fixed SVIDs and bundles (tests, or identities
// loaded from files). set() replaces them and notifies listeners, like a rotation would.
import { FailedPreconditionError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { parseX509Svid } from './parse.ts';
import type {
  Updatable,
  X509BundleSet,
  X509BundleSource,
  X509Svid,
  X509SvidSource,
} from './types.ts';
import { Listeners } from './watcher.ts';

/** An X509Svid from DER: the chain (concatenated or as a list) and the PKCS#8 key. */
export function x509SvidFromDer(
  spiffeId: string,
  chainDer: Uint8Array | readonly Uint8Array[],
  keyPkcs8Der: Uint8Array,
  hint = '',
): X509Svid {
  const x509Svid = chainDer instanceof Uint8Array ? chainDer : Buffer.concat([...chainDer]);
  return parseX509Svid({ spiffeId, x509Svid, x509SvidKey: keyPkcs8Der, hint });
}

/** Trust-domain name or ID → CA certificates (DER). */
export function bundleSet(bundles: Readonly<Record<string, readonly Uint8Array[]>>): X509BundleSet {
  const out = new Map<string, readonly Uint8Array[]>();
  for (const [k, v] of Object.entries(bundles)) out.set(TrustDomain.parse(k).name, v);
  return out;
}

export class StaticX509Source implements X509SvidSource, X509BundleSource, Updatable {
  readonly #updates = new Listeners<[]>();
  #svid: X509Svid | undefined;
  #bundles: X509BundleSet;

  constructor(svid: X509Svid | undefined, bundles: X509BundleSet) {
    this.#svid = svid;
    this.#bundles = bundles;
  }

  getX509Svid(): X509Svid {
    if (!this.#svid) throw new FailedPreconditionError('no X509-SVID configured');
    return this.#svid;
  }

  getX509BundleForTrustDomain(trustDomain: string): readonly Uint8Array[] | undefined {
    return this.#bundles.get(TrustDomain.parse(trustDomain).name);
  }

  /** Replaces the SVID (and bundles, when given) and notifies listeners. */
  set(svid: X509Svid | undefined, bundles?: X509BundleSet): void {
    this.#svid = svid;
    if (bundles) this.#bundles = bundles;
    this.#updates.emit();
  }

  onUpdate(listener: () => void): () => void {
    return this.#updates.add(listener);
  }
}
