// Wire → domain for what the server sends the agent. Untrusted input from the network, though
// from an authenticated server: shapes are checked, sizes were bounded by the transport.
import type { Bundle as DomainBundle } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { bundleToSpiffeJson } from '../../crypto/bundle-format.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type {
  Bundle,
  BundleSchema,
  EntrySchema,
  Entry as WireEntry,
} from '../../../proto/gen/tessera/v1/types_pb.js';

export function entryFromWire(w: WireEntry): Entry {
  const expires = Number(w.expiresAt);
  return {
    id: w.id,
    spiffeId: w.spiffeId,
    parentId: w.parentId,
    selectors: w.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtl: w.x509SvidTtl,
    jwtSvidTtl: w.jwtSvidTtl,
    dnsNames: [...w.dnsNames],
    federatesWith: [...w.federatesWith],
    admin: w.admin,
    downstream: w.downstream,
    expiresAt: expires === 0 ? null : expires * 1000,
    hint: w.hint,
    revision: Number(w.revision),
    createdAt: Number(w.createdAt) * 1000,
  };
}

export function bundleFromWire(w: Bundle): DomainBundle {
  return {
    trustDomain: w.trustDomain,
    x509Authorities: w.x509Authorities.map((der, i) => ({
      der,
      tainted: w.x509Tainted[i] === true,
    })),
    jwtAuthorities: w.jwtAuthorities.map((k) => ({
      kid: k.kid,
      publicKeyDer: k.publicKey,
      expiresAt: Number(k.expiresAt) * 1000,
      tainted: k.tainted,
    })),
    sequence: Number(w.sequence),
    refreshHint: Number(w.refreshHint),
  };
}

/**
 * A federated bundle from the server: its trust domain must be a valid name other than the
 * agent's own (a federated bundle never replaces the own one). Throws InvalidArgumentError.
 */
export function federatedBundleFromWire(w: Bundle, ownTrustDomain: string): DomainBundle {
  const td = TrustDomain.parse(w.trustDomain).name;
  if (td !== w.trustDomain)
    throw new InvalidArgumentError(
      `federated bundle: "${w.trustDomain.slice(0, 80)}" is not a trust domain name`,
    );
  if (td === ownTrustDomain)
    throw new InvalidArgumentError('federated bundle: the own trust domain is not federated');
  const b = bundleFromWire(w);
  try {
    // Parses every CA certificate and JWT key once, so that nothing later trips over them.
    bundleToSpiffeJson(b);
  } catch (e) {
    throw new InvalidArgumentError(
      `federated bundle of "${td}": unusable key material (${(e as Error).message})`,
    );
  }
  return b;
}

/** Domain → wire, for the agent's persisted sync state (sync-state-file.ts); inverse of entryFromWire. */
export function entryToWire(e: Entry): MessageInitShape<typeof EntrySchema> {
  return {
    id: e.id,
    spiffeId: e.spiffeId,
    parentId: e.parentId,
    selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    dnsNames: [...e.dnsNames],
    federatesWith: [...e.federatesWith],
    admin: e.admin,
    downstream: e.downstream,
    expiresAt: e.expiresAt === null ? 0n : seconds(e.expiresAt),
    hint: e.hint,
    revision: BigInt(e.revision),
    createdAt: seconds(e.createdAt),
  };
}

/** Domain → wire; inverse of bundleFromWire (tainted flags and key expiry kept). */
export function bundleToWire(b: DomainBundle): MessageInitShape<typeof BundleSchema> {
  return {
    trustDomain: b.trustDomain,
    x509Authorities: b.x509Authorities.map((a) => a.der),
    x509Tainted: b.x509Authorities.map((a) => a.tainted),
    jwtAuthorities: b.jwtAuthorities.map((k) => ({
      kid: k.kid,
      publicKey: k.publicKeyDer,
      expiresAt: seconds(k.expiresAt),
      tainted: k.tainted,
    })),
    sequence: BigInt(b.sequence),
    refreshHint: BigInt(b.refreshHint),
  };
}

function seconds(ms: number): bigint {
  return BigInt(Math.floor(ms / 1000));
}
