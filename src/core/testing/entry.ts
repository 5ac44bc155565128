// Test support (imported only by tests, fixtures and benches): a registration entry with the
// defaults a plain stored entry has, so a test names only what it is about.
import type { Entry } from '../entry.ts';

/**
 * An entry with these fields and otherwise none of the options: server-default TTLs, no DNS
 * names, no federation, not admin or downstream, no expiry, no hint; revision 1, created at 0.
 */
export function entryOf(
  f: Pick<Entry, 'id' | 'spiffeId' | 'parentId' | 'selectors'> & Partial<Entry>,
): Entry {
  const { id, spiffeId, parentId, selectors, ...rest } = f;
  return {
    id,
    spiffeId,
    parentId,
    selectors,
    x509SvidTtl: 0,
    jwtSvidTtl: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    expiresAt: null,
    hint: '',
    revision: 1,
    createdAt: 0,
    ...rest,
  };
}
