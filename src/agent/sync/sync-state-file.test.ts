// The agent's persisted sync state: round trip, 0600, corrupt or oversized files refused with a
// clear error, and writes coalesced (debounced, one in flight, retried after a failure).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Bundle } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { makeCa } from '../../crypto/x509/testing/ca.ts';
import {
  CoalescingWriter,
  MAX_SYNC_STATE_FILE_BYTES,
  SYNC_STATE_FILE,
  SyncStateFile,
  type SyncState,
} from './sync-state-file.ts';

const ownCa = await makeCa('ec-p256', 'example.org');
const partnerCa = await makeCa('ec-p256', 'partner.test');
const keys = new MemoryKeyManager();
const ownJwt = await keys.generate('own', 'ec-p256');
const partnerJwt = await keys.generate('partner', 'ec-p256');

const dir = () => mkdtempSync(path.join(os.tmpdir(), 'tessera-sync-state-'));

function entry(id: string, over: Partial<Entry> = {}): Entry {
  return {
    id,
    spiffeId: `spiffe://example.org/${id}`,
    parentId: 'spiffe://example.org/spire/agent/join_token/a',
    selectors: [{ type: 'unix', value: 'uid:1000' }],
    x509SvidTtl: 0,
    jwtSvidTtl: 300,
    dnsNames: ['a.example'],
    federatesWith: ['partner.test'],
    admin: false,
    downstream: true,
    expiresAt: null,
    hint: 'h',
    revision: 3,
    createdAt: 1_700_000_000_000,
    ...over,
  };
}

const own: Bundle = {
  trustDomain: 'example.org',
  x509Authorities: [{ der: ownCa.certDer, tainted: true }],
  jwtAuthorities: [
    {
      kid: 'own-1',
      publicKeyDer: ownJwt.publicKeyDer,
      expiresAt: 1_900_000_000_000,
      tainted: false,
    },
  ],
  sequence: 9,
  refreshHint: 60,
};
const partner: Bundle = {
  trustDomain: 'partner.test',
  x509Authorities: [{ der: partnerCa.certDer, tainted: false }],
  jwtAuthorities: [
    { kid: 'p-1', publicKeyDer: partnerJwt.publicKeyDer, expiresAt: 0, tainted: false },
  ],
  sequence: 4,
  refreshHint: 300,
};

const state: SyncState = {
  entries: new Map([
    ['z', entry('z', { expiresAt: 1_800_000_000_000 })],
    ['a', entry('a', { federatesWith: [], selectors: [], dnsNames: [] })],
  ]),
  bundle: own,
  federatedBundles: new Map([['partner.test', partner]]),
};

describe('SyncStateFile', () => {
  it('round-trips entries (in arrival order), the own bundle and the federated bundles, 0600', async () => {
    const d = dir();
    const file = new SyncStateFile(d, 'example.org');
    await file.save(state);
    assert.equal(file.file, path.join(d, SYNC_STATE_FILE));
    assert.equal(statSync(file.file).mode & 0o777, 0o600);
    const back = await file.load();
    assert.ok(back);
    assert.deepEqual([...back.entries.keys()], ['z', 'a']);
    assert.deepEqual(back.entries.get('z'), state.entries.get('z'));
    assert.deepEqual(back.entries.get('a'), state.entries.get('a'));
    const norm = (b: Bundle | null | undefined) =>
      b && {
        ...b,
        x509Authorities: b.x509Authorities.map((a) => ({ ...a, der: Buffer.from(a.der) })),
        jwtAuthorities: b.jwtAuthorities.map((k) => ({
          ...k,
          publicKeyDer: Buffer.from(k.publicKeyDer),
        })),
      };
    assert.deepEqual(norm(back.bundle), norm(own));
    assert.deepEqual([...back.federatedBundles.keys()], ['partner.test']);
    assert.deepEqual(norm(back.federatedBundles.get('partner.test')), norm(partner));
  });

  it('no file is no state; an empty state round-trips', async () => {
    const file = new SyncStateFile(dir(), 'example.org');
    assert.equal(await file.load(), null);
    await file.save({ entries: new Map(), bundle: null, federatedBundles: new Map() });
    const back = await file.load();
    assert.equal(back?.entries.size, 0);
    assert.equal(back?.bundle, null);
    assert.equal(back?.federatedBundles.size, 0);
  });

  it('a corrupt file is a clear error naming the file and the part', async () => {
    const file = new SyncStateFile(dir(), 'example.org');
    await file.save(state);
    const good = JSON.parse(readFileSync(file.file, 'utf8')) as Record<string, unknown>;
    const rejects = async (doc: unknown, re: RegExp) => {
      writeFileSync(file.file, typeof doc === 'string' ? doc : JSON.stringify(doc));
      await assert.rejects(file.load(), (e: Error) => {
        assert.match(e.message, /sync-state\.json: /);
        assert.match(e.message, re);
        return true;
      });
    };
    await rejects('{not json', /not valid JSON/);
    await rejects('[]', /not a JSON object/);
    await rejects({ ...good, version: 2 }, /unsupported version 2/);
    await rejects({ ...good, trust_domain: 'other.org' }, /another trust domain \(other\.org\)/);
    await rejects({ ...good, entries: {} }, /"entries" is missing/);
    await rejects({ ...good, federated_bundles: null }, /"federated_bundles" is missing/);
    const entries = good.entries as Record<string, unknown>[];
    await rejects({ ...good, entries: [{ ...entries[0], revision: 'x' }] }, /entries\[0\]: /);
    await rejects({ ...good, entries: [{ ...entries[0], bogus: 1 }] }, /entries\[0\]: /);
    await rejects({ ...good, entries: [entries[0], entries[0]] }, /entries\[1\]: duplicate id/);
    await rejects({ ...good, entries: [{ ...entries[0], id: '' }] }, /entries\[0\]: no id/);
    const fed = good.federated_bundles as Record<string, unknown>[];
    await rejects(
      { ...good, federated_bundles: [{ ...fed[0], trustDomain: 'example.org' }] },
      /federated_bundles\[0\]: .*own trust domain/,
    );
    await rejects(
      { ...good, federated_bundles: [{ ...fed[0], x509Authorities: ['AAAA'] }] },
      /federated_bundles\[0\]: .*unusable key material/,
    );
    await rejects(
      { ...good, bundle: { ...(good.bundle as object), trustDomain: 'partner.test' } },
      /bundle: not the own trust domain/,
    );
  });

  it('refuses an oversized file without reading it', async () => {
    const file = new SyncStateFile(dir(), 'example.org');
    writeFileSync(file.file, '{');
    truncateSync(file.file, MAX_SYNC_STATE_FILE_BYTES + 1); // sparse: costs no disk
    await assert.rejects(file.load(), /sync-state\.json: \d+ bytes, larger than/);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits (up to 5 s: the machine may be busy) until `pred` holds. */
async function until(pred: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!pred() && Date.now() < deadline) await sleep(5);
  assert.ok(pred());
}

describe('CoalescingWriter', () => {
  function writer(o: { delayMs?: number; writeMs?: number; fail?: () => boolean } = {}) {
    const log: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let version = 0;
    const written: number[] = [];
    const w = new CoalescingWriter({
      delayMs: o.delayMs ?? 20,
      retryMs: 30,
      log: (m) => log.push(m),
      write: async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const v = version; // the state as the write starts
        try {
          await sleep(o.writeMs ?? 0);
          if (o.fail?.()) throw new Error('disk full');
          written.push(v);
        } finally {
          inFlight--;
        }
      },
    });
    const change = () => {
      version++;
      w.schedule();
    };
    return { w, change, written, log, maxInFlight: () => maxInFlight, inFlight: () => inFlight };
  }

  it('coalesces a burst of changes into one write of the latest state', async () => {
    const t = writer();
    for (let i = 0; i < 50; i++) t.change();
    assert.deepEqual(t.written, []);
    await until(() => t.written.length > 0);
    await sleep(60);
    assert.deepEqual(t.written, [50]);
    assert.equal(t.w.attempts, 1);
  });

  it('never writes twice at once; changes during a write cause one more write', async () => {
    const t = writer({ delayMs: 5, writeMs: 60 });
    t.change();
    await until(() => t.inFlight() > 0);
    for (let i = 0; i < 10; i++) t.change();
    await until(() => t.written.length >= 2);
    await sleep(80);
    assert.deepEqual(t.written, [1, 11]);
    assert.equal(t.maxInFlight(), 1);
  });

  it('flush writes what is pending now; close ignores later changes', async () => {
    const t = writer({ delayMs: 10_000, writeMs: 20 });
    t.change();
    await t.w.flush();
    assert.deepEqual(t.written, [1]);
    await t.w.flush();
    assert.equal(t.w.attempts, 1, 'nothing pending, nothing written');
    t.change();
    await t.w.close();
    assert.deepEqual(t.written, [1, 2]);
    t.change();
    await sleep(30);
    assert.deepEqual(t.written, [1, 2]);
  });

  it('logs a failed write and retries it', async () => {
    let failures = 1;
    const t = writer({ fail: () => failures-- > 0 });
    t.change();
    await until(() => t.written.length > 0);
    assert.deepEqual(t.written, [1]);
    assert.equal(t.w.attempts, 2);
    assert.match(t.log.join('\n'), /could not persist the sync state/);
  });
});
