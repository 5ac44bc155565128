import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AccessPolicy, AccessRequestAuditDetails, ServerWorkload } from '../../core/access.ts';
import type { AuditEvent } from '../../core/audit.ts';
import { ManualClock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { allow, deny, MONDAY_MORNING, server } from './testing/fixtures.ts';
import { buildPolicyIndex, decideAccess } from './policy-index.ts';
import { proposedIndex, recordedRequest, replay } from './what-if.ts';
import { forEachRecordSince, whatIf } from './what-if-replay.ts';

const WEB = 'spiffe://td/ns/prod/sa/web';
const BATCH = 'spiffe://td/ns/prod/sa/batch';
const HOUR = 3_600_000;

function requestEvent(
  time: number,
  client: string,
  more: Partial<AccessRequestAuditDetails> = {},
): AuditEvent {
  const details: AccessRequestAuditDetails = {
    client,
    selectors: ['unix:uid:1000'],
    attributes: { 'unix.uid': '1000' },
    server: 'db',
    agent: 'spiffe://td/spire/agent/join_token/x',
    ...more,
  };
  return {
    time,
    actor: client,
    action: 'access.request',
    target: details.server,
    outcome: 'success',
    correlationId: `c-${time}-${client}`,
    details: { ...details },
  };
}

const other = (time: number): AuditEvent => ({
  time,
  actor: 'local-admin',
  action: 'entry.create',
  target: 'x',
  outcome: 'success',
  correlationId: `o-${time}`,
  details: {},
});

const record = (seq: number, e: AuditEvent) => ({ ...e, seq, prevHash: '', hash: '' });

describe('replay (pure)', () => {
  const current = buildPolicyIndex(
    [server('db')],
    [allow('web', WEB), allow('batch-hours', BATCH, { condition: 'now.hour < 12' })],
  ).index;

  it('lists flips in both directions with the deciding policy on each side, at the recorded time', () => {
    const proposed = proposedIndex(
      [server('db')],
      [allow('batch-any-time', BATCH), deny('no-web', WEB)],
    );
    const records = [
      record(1, requestEvent(MONDAY_MORNING, WEB)), // allow → deny
      record(2, requestEvent(MONDAY_MORNING, BATCH)), // allow → allow (another policy): no flip
      record(3, requestEvent(MONDAY_MORNING + 4 * HOUR, BATCH)), // 14:30: deny → allow
      record(4, other(MONDAY_MORNING)), // not a request
      record(5, requestEvent(MONDAY_MORNING, WEB, { selectors: 'bad' as unknown as string[] })),
    ];
    const r = replay(records, current, proposed);
    assert.equal(r.replayed, 3);
    assert.equal(r.unreadable, 2);
    assert.equal(r.flipCount, 2);
    assert.equal(r.allowToDeny, 1);
    assert.equal(r.denyToAllow, 1);
    assert.deepEqual(
      r.flips.map((f) => [
        f.seq,
        f.client,
        f.server,
        f.before.reason,
        f.before.policy,
        f.after.reason,
        f.after.policy,
      ]),
      [
        [1, WEB, 'db', 'allowed', 'web', 'denied-by-policy', 'no-web'],
        [3, BATCH, 'db', 'condition-false', 'batch-hours', 'allowed', 'batch-any-time'],
      ],
    );
    assert.equal(r.flips[1]!.before.failedCondition, 'now.hour < 12');
  });

  it('an identical proposal flips nothing', () => {
    const same = proposedIndex(
      [server('db')],
      [allow('web', WEB), allow('batch-hours', BATCH, { condition: 'now.hour < 12' })],
    );
    const r = replay([record(1, requestEvent(MONDAY_MORNING, WEB))], current, same);
    assert.deepEqual([r.replayed, r.flipCount, r.flips.length], [1, 0, 0]);
  });

  it('refuses a proposal with a policy that does not compile or names an unknown server', () => {
    assert.throws(
      () => proposedIndex([server('db')], [allow('p', 'spiffe://td/web-*')]),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.message.startsWith('access_policies "p": client: invalid pattern "spiffe://td/web-*"'),
    );
    assert.throws(
      () => proposedIndex([server('db')], [allow('p', WEB, { condition: 'now.hour +' })]),
      /^InvalidArgumentError: access_policies "p": condition: /,
    );
    assert.throws(
      () => proposedIndex([server('db')], [allow('p', WEB, { server: 'cache' })]),
      /access_policies "p": server: unknown server workload "cache"/,
    );
  });

  it('reads the recorded request back, HTTP facts included', () => {
    const r = recordedRequest(
      record(9, requestEvent(5, WEB, { request: { method: 'GET', path: '/x', host: 'h' } })),
    );
    const attributes = Object.assign(Object.create(null) as object, { 'unix.uid': '1000' });
    assert.deepEqual(r, {
      seq: 9,
      time: 5,
      request: {
        client: {
          spiffeId: WEB,
          selectors: [{ type: 'unix', value: 'uid:1000' }],
          attributes,
        },
        server: 'db',
        at: 5,
        request: { method: 'GET', path: '/x', host: 'h' },
      },
    });
  });

  it('a recorded "__proto__" attribute stays an attribute a condition can read', () => {
    const details = JSON.parse(
      `{"client":"${WEB}","server":"db","selectors":[],"attributes":{"__proto__":"x"},"agent":""}`,
    ) as Record<string, unknown>;
    const rec = recordedRequest(record(1, { ...requestEvent(5, WEB), details }))!;
    assert.deepEqual(Object.keys(rec.request.client.attributes), ['__proto__']);
    const idx = buildPolicyIndex(
      [server('db')],
      [allow('p', WEB, { condition: 'client.attributes["__proto__"] == "x"' })],
    ).index;
    assert.equal(decideAccess(idx, rec.request).allowed, true);
  });
});

describe('whatIf over a real SQLite audit log', () => {
  let dir: string;
  let store: Store;
  const clock = new ManualClock(MONDAY_MORNING + 48 * HOUR);
  const servers: ServerWorkload[] = [server('db')];
  let policies: AccessPolicy[] = [];
  const source = { listServerWorkloads: async () => servers, listPolicies: async () => policies };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-whatif-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, clock);
    const events: AuditEvent[] = [];
    // 60 h of history, one request an hour alternating web/batch, noise in between.
    for (let h = 0; h < 60; h++) {
      const t = MONDAY_MORNING - 12 * HOUR + h * HOUR;
      events.push(other(t), requestEvent(t, h % 2 ? BATCH : WEB));
    }
    await store.audit.appendMany(events);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('replays the window only (default 24 h), against current and proposed', async () => {
    policies = [allow('web', WEB)];
    const r = await whatIf(
      { audit: store.audit, source, clock },
      { serverWorkloads: [], accessPolicies: [] },
      0,
    );
    assert.equal(r.to - r.from, 24 * HOUR);
    assert.equal(r.replayed, 24);
    assert.equal(r.truncated, false);
    assert.equal(r.flipCount, 12); // the web requests lose their allow
    assert.ok(
      r.flips.every(
        (f) => f.client === WEB && f.before.allowed && f.after.reason === 'no-matching-policy',
      ),
    );
    assert.ok(r.flips.every((f) => f.time >= r.from));
  });

  it('a proposal may add server workloads; the new set opens batch', async () => {
    const r = await whatIf(
      { audit: store.audit, source, clock },
      {
        serverWorkloads: [server('cache')],
        accessPolicies: [
          allow('web', WEB),
          allow('batch', BATCH),
          allow('c', WEB, { server: 'cache' }),
        ],
      },
      6 * HOUR,
    );
    assert.equal(r.replayed, 6);
    assert.equal(r.denyToAllow, 3);
    assert.equal(r.allowToDeny, 0);
  });

  it('says when the window holds more than the bound', async () => {
    const r = await whatIf(
      { audit: store.audit, source, clock, maxRecords: 5 },
      { serverWorkloads: [], accessPolicies: [] },
      0,
    );
    assert.equal(r.replayed, 5);
    assert.equal(r.truncated, true);
  });

  it('finds the window start by seq and filters by action', async () => {
    const count = async (from: number, max = 1000) => {
      const seen: number[] = [];
      const r = await forEachRecordSince(store.audit, from, max, (rec) => seen.push(rec.seq));
      assert.equal(seen.length, r.count);
      assert.ok(seen.every((s, i) => i === 0 || s > seen[i - 1]!));
      return r;
    };
    assert.deepEqual(await count(0), { count: 60, truncated: false });
    assert.deepEqual(await count(MONDAY_MORNING + 47 * HOUR), { count: 1, truncated: false });
    assert.deepEqual(await count(MONDAY_MORNING + 100 * HOUR), { count: 0, truncated: false });
    assert.deepEqual(await count(0, 60), { count: 60, truncated: false });
    assert.deepEqual(await count(0, 59), { count: 59, truncated: true });
  });

  it('refuses a window beyond 90 days', async () => {
    await assert.rejects(
      whatIf(
        { audit: store.audit, source, clock },
        { serverWorkloads: [], accessPolicies: [] },
        91 * 24 * HOUR,
      ),
      /since: must be between 1 ms and 90 days/,
    );
  });
});
