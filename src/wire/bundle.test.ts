import assert from 'node:assert/strict';
import { it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import type { Bundle } from '../core/bundle.ts';
import { BundleSchema } from '../../proto/gen/tessera/v1/types_pb.js';
import { bundleFromWire, bundleToWire } from './bundle.ts';

it('round-trips a bundle with tainted flags and JWT key expiry', () => {
  const b: Bundle = {
    trustDomain: 'example.org',
    x509Authorities: [
      { der: new Uint8Array([1, 2]), tainted: false },
      { der: new Uint8Array([3]), tainted: true },
    ],
    jwtAuthorities: [
      { kid: 'k1', publicKeyDer: new Uint8Array([4]), expiresAt: 1_800_000_000_000, tainted: true },
    ],
    sequence: 12,
    refreshHint: 300,
  };
  const w = create(BundleSchema, bundleToWire(b));
  assert.deepEqual(w.x509Tainted, [false, true]);
  assert.equal(w.jwtAuthorities[0]?.expiresAt, 1_800_000_000n);
  assert.deepEqual(bundleFromWire(w), b);
});

it('reads a missing tainted flag as not tainted', () => {
  const w = create(BundleSchema, {
    trustDomain: 'example.org',
    x509Authorities: [new Uint8Array([1])],
  });
  assert.deepEqual(bundleFromWire(w).x509Authorities, [
    { der: new Uint8Array([1]), tainted: false },
  ]);
});
