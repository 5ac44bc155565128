import assert from 'node:assert/strict';
import { it } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ReleaseCredentialResponseSchema } from '../../proto/gen/tessera/v1/release_pb.js';
import type { CredentialValue } from '../core/access.ts';
import {
  type Released,
  deniedFromWire,
  deniedToWire,
  releasedFromWire,
  releasedToWire,
} from './release.ts';

const roundTrip = (init: ReturnType<typeof releasedToWire>) =>
  fromBinary(
    ReleaseCredentialResponseSchema,
    toBinary(ReleaseCredentialResponseSchema, create(ReleaseCredentialResponseSchema, init)),
  );

it('every credential kind survives the wire; expires_at 0 means never', () => {
  const values: CredentialValue[] = [
    { kind: 'token', token: 't' },
    { kind: 'password', username: 'u', password: 'p' },
    { kind: 'aws', accessKeyId: 'a', secretAccessKey: 's', sessionToken: 'st' },
  ];
  for (const [i, value] of values.entries()) {
    const r: Released = {
      credential: { value, expiresAt: i === 0 ? null : 1_800_000_000_000, leaseId: `l${i}` },
      client: 'spiffe://example.org/web',
      server: 'db',
      present: 'postgres-password',
      policy: 'p',
      credentialProvider: 'prov',
      correlationId: 'c',
    };
    const w = roundTrip(releasedToWire(r));
    assert.equal(w.result.case, 'credential');
    if (w.result.case === 'credential') assert.deepEqual(releasedFromWire(w.result.value), r);
  }
});

it('a denial survives the wire; a credential without a value is refused', () => {
  const d = {
    reason: 'condition-false' as const,
    policy: 'p',
    failedCondition: 'now.getHours() < 18',
    correlationId: 'c',
  };
  const w = roundTrip(deniedToWire(d));
  assert.equal(w.result.case, 'denial');
  if (w.result.case === 'denial') assert.deepEqual(deniedFromWire(w.result.value), d);
  const empty = create(ReleaseCredentialResponseSchema, {
    result: { case: 'credential', value: {} },
  });
  if (empty.result.case !== 'credential') assert.fail();
  assert.throws(() => releasedFromWire(empty.result.value as never), {
    message: 'released credential: no value',
  });
});
