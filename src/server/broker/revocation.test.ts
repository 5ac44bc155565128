// Revocation: leases ended through the lease manager, the access revision bumped (also when no
// lease ended or ending them failed), empty scopes refused; and the hooks in agent ban/evict and
// entry delete, over the real SQLite store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { LeaseScope } from '../../core/access.ts';
import { ManualClock } from '../../core/clock.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { makeNode } from '../../store/conformance/fixtures.ts';
import { AgentService } from '../attestation/agent-service.ts';
import { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { EntryService } from '../registration/entry-service.ts';
import type { Minter } from '../svid/minter.ts';
import { Revocation } from './revocation.ts';

const NOW = Date.UTC(2030, 0, 1);
const TD = TrustDomain.parse('example.org');
const admin: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'c1' };
let dir = '';
let n = 0;
let store: Store;
let ended: Array<[LeaseScope, string]>;
let endFails: boolean;
let revocation: Revocation;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-revoke-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(async () => {
  store = await openStore(
    { kind: 'sqlite', path: path.join(dir, `s${n++}.db`) },
    new ManualClock(NOW),
  );
  ended = [];
  endFails = false;
  revocation = new Revocation({
    leases: {
      endWhere: async (scope, reason) => {
        if (endFails) throw new Error('database of the provider is down');
        ended.push([scope, reason]);
        return 2;
      },
    },
    revision: store.accessRevision,
  });
});
afterEach(() => store.close());

describe('Revocation', () => {
  it('ends the leases of the scope and bumps the access revision', async () => {
    const before = await store.accessRevision.current();
    assert.equal(await revocation.revoke({ policy: 'web-to-orders' }, 'policy deleted'), 2);
    assert.deepEqual(ended, [[{ policy: 'web-to-orders' }, 'policy deleted']]);
    assert.equal(await store.accessRevision.current(), before + 1);
  });

  it('bumps the revision even when ending leases fails, and reports the failure', async () => {
    const before = await store.accessRevision.current();
    endFails = true;
    await assert.rejects(revocation.revoke({ agent: 'spiffe://example.org/a' }, 'x'), /is down/);
    assert.equal(await store.accessRevision.current(), before + 1);
  });

  it('refuses an empty scope (it would match every lease)', async () => {
    await assert.rejects(revocation.revoke({}, 'x'), {
      name: 'InvalidArgumentError',
      message: 'revocation scope: at least one of policy, provider, server, client, agent',
    });
    await assert.rejects(revocation.revoke({ client: '' }, 'x'), {
      message: 'revocation scope: client is empty',
    });
    assert.deepEqual(ended, []);
  });
});

describe('revocation hooks', () => {
  const services = () => {
    const clock = new ManualClock(NOW);
    const auditor = new Auditor(clock, store);
    const agents = new AgentService({
      store,
      auditor,
      clock,
      minter: {} as Minter,
      trustDomain: TD,
      agentSvidTtlMs: 3_600_000,
      joinTokenTtlMs: 600_000,
      revocation,
    });
    const entries = new EntryService({ store, auditor, clock, trustDomain: TD, revocation });
    return { agents, entries };
  };

  it('banning or evicting an agent revokes what was released through it', async () => {
    const { agents } = services();
    const node = makeNode(1);
    await store.nodes.upsert(node);
    await agents.ban(admin, node.spiffeId);
    await agents.evict(admin, node.spiffeId);
    assert.deepEqual(ended, [
      [{ agent: node.spiffeId }, 'agent banned'],
      [{ agent: node.spiffeId }, 'agent evicted'],
    ]);
  });

  it('deleting the last entry of a SPIFFE ID revokes its leases; otherwise caches only', async () => {
    const { entries } = services();
    const input = (uid: number) => ({
      spiffeId: 'spiffe://example.org/web',
      parentId: 'spiffe://example.org/spire/agent/join_token/a',
      selectors: [`unix:uid:${uid}`],
    });
    const [a, b] = await entries.batchCreate(admin, [input(1), input(2)]);
    assert.ok(a?.ok && b?.ok);
    const before = await store.accessRevision.current();
    await entries.batchDelete(admin, [a.value.id]);
    assert.deepEqual(ended, [], 'another entry still names the client');
    assert.equal(await store.accessRevision.current(), before + 1, 'agent caches purged');
    await entries.batchDelete(admin, [b.value.id]);
    assert.deepEqual(ended, [[{ client: 'spiffe://example.org/web' }, 'entry deleted']]);
    assert.equal(await store.accessRevision.current(), before + 2);
  });
});
