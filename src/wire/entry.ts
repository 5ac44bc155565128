// Registration entries ↔ the wire Entry message (tessera/v1/types.proto). Expiry 0 means never.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Entry, EntryInput } from '../core/entry.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import type { Entry as WireEntry, EntrySchema } from '../../proto/gen/tessera/v1/types_pb.js';
import { msFromSeconds, secondsFromMs } from './time.ts';

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
    expiresAt: e.expiresAt === null ? 0n : secondsFromMs(e.expiresAt),
    hint: e.hint,
    condition: e.condition ?? '',
    disclose: [...(e.disclose ?? [])],
    revision: BigInt(e.revision),
    createdAt: secondsFromMs(e.createdAt),
  };
}

/**
 * A stored entry as the server sends it (sync, persisted sync state); inverse of entryToWire.
 * Shapes are checked by the protobuf decoder; the server that sent it validated the rest.
 */
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
    ...(w.condition === '' ? {} : { condition: w.condition }),
    ...(w.disclose.length === 0 ? {} : { disclose: [...w.disclose] }),
    revision: Number(w.revision),
    createdAt: msFromSeconds(w.createdAt),
  };
}

/** Untrusted wire entry from an admin → input for validateEntryInput (core/entry.ts). */
export function entryInputFromWire(w: WireEntry | undefined): EntryInput {
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
    condition: w.condition,
    disclose: [...w.disclose],
  };
}
