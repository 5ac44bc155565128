// Domain ↔ wire conversions for the server API. Wire times are Unix seconds (int64 → bigint).
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Authority } from '../../core/authority.ts';
import type { Bundle } from '../../core/bundle.ts';
import type { Entry, EntryInput } from '../../core/entry.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { AttestedNode } from '../../core/node.ts';
import type { AuthorityInfoSchema } from '../../../proto/gen/tessera/v1/authority_pb.js';
import type {
  AttestedNodeSchema,
  BundleSchema,
  Entry as WireEntry,
  EntrySchema,
} from '../../../proto/gen/tessera/v1/types_pb.js';

export const seconds = (ms: number): bigint => BigInt(Math.floor(ms / 1000));

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

/** Untrusted wire entry → input for validateEntryInput. */
export function entryFromWire(w: WireEntry | undefined): EntryInput {
  if (!w) throw new InvalidArgumentError('entry is required');
  const expires = Number(w.expiresAt);
  if (!Number.isSafeInteger(expires) || expires < 0)
    throw new InvalidArgumentError('expires_at: out of range');
  return {
    spiffeId: w.spiffeId,
    parentId: w.parentId,
    selectors: w.selectors.map((s) => `${s.type}:${s.value}`),
    x509SvidTtl: w.x509SvidTtl,
    jwtSvidTtl: w.jwtSvidTtl,
    dnsNames: w.dnsNames,
    federatesWith: w.federatesWith,
    admin: w.admin,
    downstream: w.downstream,
    expiresAt: expires === 0 ? null : expires * 1000,
    hint: w.hint,
  };
}

export function bundleToWire(b: Bundle): MessageInitShape<typeof BundleSchema> {
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

export function nodeToWire(n: AttestedNode): MessageInitShape<typeof AttestedNodeSchema> {
  return {
    spiffeId: n.spiffeId,
    attestationType: n.attestationType,
    serialNumber: n.serialNumber,
    expiresAt: seconds(n.expiresAt),
    selectors: n.selectors.map((s) => ({ type: s.type, value: s.value })),
    banned: n.banned,
    canReattest: n.canReattest,
    createdAt: seconds(n.createdAt),
    updatedAt: seconds(n.updatedAt),
  };
}

export function authorityToWire(a: Authority): MessageInitShape<typeof AuthorityInfoSchema> {
  return {
    id: a.id,
    kind: a.kind,
    status: a.status,
    keyType: a.keyType,
    notBefore: seconds(a.notBefore),
    notAfter: seconds(a.notAfter),
    tainted: a.tainted,
    serverId: a.serverId,
    certificate: a.certChainDer[0] ?? new Uint8Array(),
  };
}

/** TTL seconds from the wire → ms; negative or absurd values are refused, never clamped. */
export function ttlMs(seconds: number, what = 'ttl'): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 10 * 365 * 86400) {
    throw new InvalidArgumentError(`${what}: must be a whole number of seconds, 0 for the default`);
  }
  return seconds * 1000;
}

export function statusOf(r: { ok: true } | { ok: false; code: string; message: string }): {
  code: string;
  message: string;
} {
  return r.ok ? { code: '', message: '' } : { code: r.code, message: r.message };
}
