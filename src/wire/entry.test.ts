import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import type { Entry } from '../core/entry.ts';
import { EntrySchema } from '../../proto/gen/tessera/v1/types_pb.js';
import { entryFromWire, entryInputFromWire, entryToWire } from './entry.ts';

const entry: Entry = {
  id: 'e1',
  spiffeId: 'spiffe://example.org/web',
  parentId: 'spiffe://example.org/spire/agent/join_token/a',
  selectors: [{ type: 'unix', value: 'uid:1000' }],
  x509SvidTtl: 3600,
  jwtSvidTtl: 300,
  dnsNames: ['web.example.org'],
  federatesWith: ['partner.example'],
  admin: false,
  downstream: true,
  expiresAt: 2_000_000_000_000,
  hint: 'web',
  revision: 7,
  createdAt: 1_700_000_000_000,
};

describe('entries on the wire', () => {
  it('round-trips a stored entry (times in whole seconds)', () => {
    const w = create(EntrySchema, entryToWire(entry));
    assert.equal(w.expiresAt, 2_000_000_000n);
    assert.equal(w.createdAt, 1_700_000_000n);
    assert.equal(w.revision, 7n);
    assert.deepEqual(entryFromWire(w), entry);
  });

  it('sends "never expires" as 0 and reads it back as null', () => {
    const w = create(EntrySchema, entryToWire({ ...entry, expiresAt: null }));
    assert.equal(w.expiresAt, 0n);
    assert.equal(entryFromWire(w).expiresAt, null);
    assert.equal(entryInputFromWire(w).expiresAt, null);
  });

  it('turns an admin entry into validation input with TYPE:VALUE selectors', () => {
    const input = entryInputFromWire(create(EntrySchema, entryToWire(entry)));
    assert.deepEqual(input.selectors, ['unix:uid:1000']);
    assert.equal(input.expiresAt, 2_000_000_000_000);
    assert.equal(input.spiffeId, entry.spiffeId);
  });

  it('refuses a missing entry and an expiry out of range', () => {
    assert.throws(() => entryInputFromWire(undefined), {
      name: 'InvalidArgumentError',
      message: 'entry is required',
    });
    assert.throws(() => entryInputFromWire(create(EntrySchema, { expiresAt: -1n })), {
      name: 'InvalidArgumentError',
      message: 'expires_at: out of range',
    });
    assert.throws(() => entryInputFromWire(create(EntrySchema, { expiresAt: 2n ** 60n })), {
      name: 'InvalidArgumentError',
      message: 'expires_at: out of range',
    });
  });
});
