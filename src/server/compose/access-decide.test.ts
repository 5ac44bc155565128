// The decider over a real SQLite store: a write through the access store announces `access`, and
// after sync() the next decision sees it — the broker's "delete policy → next release denied".
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { allow, MONDAY_MORNING, request, server } from '../access/testing/fixtures.ts';
import { buildAccessDecisions, type AccessDecisions } from './access-decide.ts';

const WEB = 'spiffe://td/ns/prod/sa/web';

describe('access decisions over the SQLite access store', () => {
  let dir: string;
  let store: Store;
  let d: AccessDecisions;
  const warnings: string[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-access-decide-'));
    const clock = new ManualClock(MONDAY_MORNING);
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, clock);
    await store.access.createServerWorkload(server('db'));
    await store.access.createCredentialProvider({
      name: 'db-password',
      type: 'static-secret',
      config: { secret: 'db' },
      createdAt: 0,
      updatedAt: 0,
    });
    d = await buildAccessDecisions({
      store,
      clock,
      log: { warn: (_f, msg) => warnings.push(msg) },
    });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('create → allowed, delete → denied, each decided right after sync()', async () => {
    assert.equal(d.decider.decide(request(WEB)).reason, 'no-matching-policy');
    await store.access.createAccessPolicy(allow('web', WEB));
    await d.decider.sync();
    assert.deepEqual(d.decider.decide(request(WEB)), {
      allowed: true,
      reason: 'allowed',
      policy: 'web',
      credentialProvider: 'db-password',
      failedCondition: '',
    });
    await store.access.deleteAccessPolicy('web');
    await d.decider.sync();
    assert.equal(d.decider.decide(request(WEB)).reason, 'no-matching-policy');
    assert.deepEqual(warnings, []);
  });

  it('the periodic task reloads', async () => {
    const before = d.decider.stats.generation;
    await d.task.run();
    assert.equal(d.decider.stats.generation, before + 1);
  });
});
