// Builders for conformance-suite records: valid defaults, overridable per test.
import type { AuditEvent } from '../../core/audit.ts';
import type { Authority } from '../../core/authority.ts';
import type { Entry } from '../../core/entry.ts';
import type { AttestedNode } from '../../core/node.ts';
import type { Store } from '../types.ts';

export type StoreFactory = () => Promise<Store>;

/** Conformance cases by name; each runs on a fresh, empty store that is closed afterwards. */
export type Cases = Readonly<Record<string, (store: Store) => Promise<void>>>;

export const T0 = 1_700_000_000_000;

/** Ids sort the same bytewise and numerically, so expected orders are easy to state. */
export function entryId(n: number): string {
  return `e-${String(n).padStart(6, '0')}`;
}

export function makeEntry(n: number, over: Partial<Entry> = {}): Entry {
  return {
    id: entryId(n),
    spiffeId: `spiffe://example.org/workload/${n}`,
    parentId: 'spiffe://example.org/spire/agent/join_token/a',
    // Canonical (sorted) order, as validateEntryInput produces.
    selectors: [
      { type: 'unix', value: 'gid:0' },
      { type: 'unix', value: `uid:${1000 + n}` },
    ],
    x509SvidTtl: 3600,
    jwtSvidTtl: 300,
    dnsNames: [`w${n}.example.org`],
    federatesWith: ['other.org'],
    admin: false,
    downstream: false,
    expiresAt: null,
    hint: `hint ${n}`,
    revision: 0,
    createdAt: T0 + n,
    ...over,
  };
}

export function makeNode(n: number, over: Partial<AttestedNode> = {}): AttestedNode {
  return {
    spiffeId: `spiffe://example.org/spire/agent/join_token/n${String(n).padStart(4, '0')}`,
    attestationType: 'join_token',
    serialNumber: `0${n}`,
    newSerialNumber: '',
    expiresAt: T0 + 3_600_000,
    selectors: [{ type: 'join_token', value: `n${n}` }],
    banned: false,
    canReattest: false,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

export function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** Every byte value, so an encoding that mangles any of them is caught. */
export const ALL_BYTES = new Uint8Array(Array.from({ length: 256 }, (_, i) => i));

export function makeAuthority(id: string, over: Partial<Authority> = {}): Authority {
  return {
    id,
    serverId: 'server-1',
    kind: 'x509',
    status: 'prepared',
    keyRef: `disk:${id}`,
    keyType: 'ec-p256',
    publicKeyDer: ALL_BYTES,
    certChainDer: [bytes(0x30, 0x82, 0x00), ALL_BYTES],
    notBefore: T0,
    notAfter: T0 + 86_400_000,
    tainted: false,
    createdAt: T0,
    ...over,
  };
}

export function auditEvent(n: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: T0 + n,
    actor: 'local-admin',
    action: 'entry.create',
    target: entryId(n),
    outcome: 'success',
    correlationId: `c-${n}`,
    details: { n, nested: { b: [1, 'two', null], a: true } },
    ...over,
  };
}

/** Opens a store for one test and closes it afterwards, whatever happens. */
export async function withStore(factory: StoreFactory, fn: (s: Store) => Promise<void>) {
  const store = await factory();
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}
