// Entry ⇄ row mapping. Selectors live in a JSON column so listing needs no join; entry_selectors
// duplicates them only as an index for the selector filter.
import { createHash } from 'node:crypto';
import { type Entry, entryIdentityKey } from '../../core/entry.ts';
import { canonicalSelectors } from '../../core/selector.ts';
import type { EntryRow, EntrySelectorRow } from './schema.ts';
import { fromFlag, parseSelectorsJson, selectorsJson, toFlag } from './codec.ts';

/**
 * The duplicate key, hashed: spiffe_id, parent_id and up to 64 selectors of 1 KiB can exceed
 * PostgreSQL's B-tree entry limit (~2.7 KB), a 64-hex digest never does.
 */
export function identityHash(e: Pick<Entry, 'spiffeId' | 'parentId' | 'selectors'>): string {
  return createHash('sha256').update(entryIdentityKey(e)).digest('hex');
}

export function toEntryRow(e: Entry): EntryRow {
  return {
    id: e.id,
    spiffe_id: e.spiffeId,
    parent_id: e.parentId,
    selectors: selectorsJson(canonicalSelectors(e.selectors)),
    identity_hash: identityHash(e),
    x509_svid_ttl: e.x509SvidTtl,
    jwt_svid_ttl: e.jwtSvidTtl,
    dns_names: JSON.stringify(e.dnsNames),
    federates_with: JSON.stringify(e.federatesWith),
    admin: toFlag(e.admin),
    downstream: toFlag(e.downstream),
    expires_at: e.expiresAt,
    hint: e.hint,
    condition: e.condition ?? '',
    disclose: JSON.stringify(e.disclose ?? []),
    revision: e.revision,
    created_at: e.createdAt,
  };
}

export function selectorRows(e: Pick<Entry, 'id' | 'selectors'>): EntrySelectorRow[] {
  return canonicalSelectors(e.selectors).map((s) => ({
    entry_id: e.id,
    type: s.type,
    value: s.value,
  }));
}

export function fromEntryRow(r: EntryRow): Entry {
  return {
    id: r.id,
    spiffeId: r.spiffe_id,
    parentId: r.parent_id,
    selectors: parseSelectorsJson(r.selectors),
    x509SvidTtl: Number(r.x509_svid_ttl),
    jwtSvidTtl: Number(r.jwt_svid_ttl),
    dnsNames: JSON.parse(r.dns_names) as string[],
    federatesWith: JSON.parse(r.federates_with) as string[],
    admin: fromFlag(r.admin),
    downstream: fromFlag(r.downstream),
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    hint: r.hint,
    ...(r.condition ? { condition: r.condition } : {}),
    ...disclosed(r.disclose),
    revision: Number(r.revision),
    createdAt: Number(r.created_at),
  };
}

/** Migration 14's column: a JSON list of attribute paths, '[]' = none. */
function disclosed(json: string): { disclose?: string[] } {
  const list = JSON.parse(json || '[]') as string[];
  return list.length === 0 ? {} : { disclose: list };
}
