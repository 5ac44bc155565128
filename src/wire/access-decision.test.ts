import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import type { AccessDecision } from '../core/access.ts';
import {
  AccessDecisionSchema,
  TestAccessRequestSchema,
} from '../../proto/gen/tessera/v1/access_pb.js';
import { decisionFromWire, decisionToWire, testRequestFromWire } from './access-decision.ts';

describe('access decision wire', () => {
  it('round-trips a decision and refuses an unknown reason', () => {
    const d: AccessDecision = {
      allowed: false,
      reason: 'condition-false',
      policy: 'p',
      credentialProvider: '',
      failedCondition: 'now.hour < 18',
    };
    assert.deepEqual(decisionFromWire(create(AccessDecisionSchema, decisionToWire(d))), d);
    assert.throws(
      () => decisionFromWire(create(AccessDecisionSchema, { reason: 'maybe' })),
      /decision: unknown reason "maybe"/,
    );
  });

  it('reads a test request: at 0 is now, HTTP facts only when given', () => {
    const r = testRequestFromWire(
      create(TestAccessRequestSchema, {
        client: 'spiffe://td/a',
        server: 'db',
        selectors: ['unix:uid:0'],
        attributes: { team: 'ops' },
      }),
      42,
    );
    assert.deepEqual(r, {
      client: {
        spiffeId: 'spiffe://td/a',
        selectors: [{ type: 'unix', value: 'uid:0' }],
        attributes: { team: 'ops' },
      },
      server: 'db',
      at: 42,
    });
    const http = testRequestFromWire(
      create(TestAccessRequestSchema, {
        client: 'spiffe://td/a',
        server: 'db',
        at: 7n,
        request: { method: 'GET', path: '/', host: '' },
      }),
      42,
    );
    assert.deepEqual([http.at, http.request], [7, { method: 'GET', path: '/', host: '' }]);
  });
});
