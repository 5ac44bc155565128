// Wire → domain for what the server sends the agent. Untrusted input from the network, though
// from an authenticated server: shapes are checked, sizes were bounded by the transport.
import type { Bundle as DomainBundle } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';
import type { Bundle, Entry as WireEntry } from '../../../proto/gen/tessera/v1/types_pb.js';

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
