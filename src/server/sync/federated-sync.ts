// Which federated bundles an agent receives over sync: exactly those of the trust domains its
// authorized entries federate with (when the server holds one), never every federated bundle;
// and, per stream, what changed since the last message.
import { type Bundle, bundleEquals } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';

export interface FederatedBundleView {
  get(trustDomain: string): Bundle | undefined;
}

/** Trust domain → bundle for the trust domains named in the entries' federatesWith. */
export function federatedBundlesFor(
  entries: readonly Entry[],
  bundles: FederatedBundleView,
): Map<string, Bundle> {
  const out = new Map<string, Bundle>();
  for (const e of entries) {
    for (const td of e.federatesWith) {
      if (out.has(td)) continue;
      const b = bundles.get(td);
      if (b) out.set(td, b);
    }
  }
  return out;
}

export interface FederatedDelta {
  readonly upserted: readonly Bundle[];
  readonly removed: readonly string[];
}

/** What one sync stream has sent; next() returns what differs and records it as sent. */
export class FederatedBundlesSent {
  readonly #sent = new Map<string, Bundle>();

  next(wanted: ReadonlyMap<string, Bundle>): FederatedDelta {
    const upserted: Bundle[] = [];
    for (const [td, b] of wanted) {
      const prev = this.#sent.get(td);
      if (prev === b || (prev && prev.sequence === b.sequence && bundleEquals(prev, b))) continue;
      upserted.push(b);
      this.#sent.set(td, b);
    }
    const removed = [...this.#sent.keys()].filter((td) => !wanted.has(td));
    for (const td of removed) this.#sent.delete(td);
    return { upserted, removed };
  }
}
