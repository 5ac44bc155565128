import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { createHandlerContext } from '@connectrpc/connect';
import type { AccessPolicy, ServerWorkload } from '../../../core/access.ts';
import { ManualClock } from '../../../core/clock.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import {
  AccessPolicyService,
  TestAccessRequestSchema,
  WhatIfAccessRequestSchema,
} from '../../../../proto/gen/tessera/v1/access_pb.js';
import { openStore } from '../../../store/open.ts';
import type { Store } from '../../../store/types.ts';
import { PolicyDecider } from '../../access/decider.ts';
import { allow, MONDAY_MORNING, server } from '../../access/testing/fixtures.ts';
import { accessDecisionHandlers, type AccessDocumentParser } from './access-decision-handlers.ts';

const WEB = 'spiffe://td/ns/prod/sa/web';
const ctx = (method: 'testAccess' | 'whatIfAccess') =>
  createHandlerContext({
    service: AccessPolicyService,
    method: AccessPolicyService.method[method],
    protocolName: 'connect',
    requestMethod: 'POST',
    url: `https://server/tessera.v1.AccessPolicyService/${method}`,
  });

describe('access decision handlers', () => {
  let dir: string;
  let store: Store;
  const clock = new ManualClock(MONDAY_MORNING);
  const servers: ServerWorkload[] = [server('db')];
  const policies: AccessPolicy[] = [
    allow('web-office-hours', WEB, { condition: 'now.hour >= 8 && now.hour < 18' }),
  ];
  const source = { listServerWorkloads: async () => servers, listPolicies: async () => policies };
  // A stand-in for parseAccessDocument: JSON with the two lists.
  const parseDocument: AccessDocumentParser = (text) => {
    const doc = JSON.parse(text) as { policies: Array<[string, string]> };
    return { serverWorkloads: [], accessPolicies: doc.policies.map(([n, c]) => allow(n, c)) };
  };
  let h: ReturnType<typeof accessDecisionHandlers>;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-access-h-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, clock);
    await store.audit.append({
      time: MONDAY_MORNING - 3_600_000,
      actor: WEB,
      action: 'access.request',
      target: 'db',
      outcome: 'success',
      correlationId: 'c1',
      details: { client: WEB, selectors: [], attributes: {}, server: 'db', agent: '' },
    });
    const decider = await PolicyDecider.create({ source, log: { warn: () => {} } });
    h = accessDecisionHandlers({
      decider,
      whatIf: { audit: store.audit, source },
      clock,
      parseDocument,
    });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('TestAccess decides now, or at the given time, explaining a failed condition', async () => {
    const now = await h.testAccess(
      create(TestAccessRequestSchema, { client: WEB, server: 'db' }),
      ctx('testAccess'),
    );
    assert.equal(now.decision?.allowed, true);
    assert.equal(now.decision?.policy, 'web-office-hours');
    assert.equal(now.decision?.credentialProvider, 'db-password');
    const night = await h.testAccess(
      create(TestAccessRequestSchema, {
        client: WEB,
        server: 'db',
        at: BigInt(Date.parse('2026-12-07T22:00:00Z')),
      }),
      ctx('testAccess'),
    );
    assert.deepEqual(
      [night.decision?.allowed, night.decision?.reason, night.decision?.failedCondition],
      [false, 'condition-false', 'now.hour < 18'],
    );
  });

  it('TestAccess refuses bad input naming the field', async () => {
    const bad = async (
      init: Parameters<typeof create<typeof TestAccessRequestSchema>>[1],
      message: string,
    ) =>
      assert.rejects(
        async () => h.testAccess(create(TestAccessRequestSchema, init), ctx('testAccess')),
        (e: unknown) => e instanceof InvalidArgumentError && e.message === message,
      );
    await bad({ server: 'db' }, 'client: required');
    await bad({ client: WEB }, 'server: required');
    await bad(
      { client: 'spiffe://td', server: 'db' },
      'client: invalid SPIFFE ID "spiffe://td": a leaf SVID needs a path (the trust domain ID is reserved for CAs)',
    );
    await bad(
      { client: WEB, server: 'db', selectors: ['nocolon'] },
      'selectors[0]: invalid selector "nocolon": expected TYPE:VALUE',
    );
    await bad({ client: WEB, server: 'db', at: -1n }, 'at: must be Unix milliseconds (0 = now)');
    await bad(
      { client: WEB, server: 'db', attributes: { k: 'v'.repeat(5000) } },
      'attributes["k"]: longer than 4096 bytes',
    );
    await bad(
      { client: WEB, server: 'db', request: { method: 'GET\n', path: '/', host: 'h' } },
      'request.method: has control characters',
    );
  });

  it('WhatIfAccess replays against the parsed proposal and reports the flip', async () => {
    const res = await h.whatIfAccess(
      create(WhatIfAccessRequestSchema, { document: JSON.stringify({ policies: [] }) }),
      ctx('whatIfAccess'),
    );
    assert.equal(res.replayed, 1);
    assert.equal(res.flipCount, 1);
    assert.equal(res.allowToDeny, 1);
    assert.equal(res.truncated, false);
    const f = (res.flips ?? [])[0]!;
    assert.deepEqual(
      [f.seq, f.client, f.server, f.before?.policy, f.before?.allowed, f.after?.reason],
      [1n, WEB, 'db', 'web-office-hours', true, 'no-matching-policy'],
    );
  });

  it('WhatIfAccess refuses an empty, oversized or negative-window request', async () => {
    await assert.rejects(
      async () =>
        h.whatIfAccess(create(WhatIfAccessRequestSchema, { document: ' ' }), ctx('whatIfAccess')),
      /document: required/,
    );
    await assert.rejects(
      async () =>
        h.whatIfAccess(
          create(WhatIfAccessRequestSchema, { document: 'x'.repeat(1024 * 1024 + 1) }),
          ctx('whatIfAccess'),
        ),
      /document: larger than 1048576 bytes/,
    );
    await assert.rejects(
      async () =>
        h.whatIfAccess(
          create(WhatIfAccessRequestSchema, { document: '{}', sinceMs: -5n }),
          ctx('whatIfAccess'),
        ),
      /since_ms: must not be negative/,
    );
  });
});
