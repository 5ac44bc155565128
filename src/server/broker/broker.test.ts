// The credential broker over the real SQLite store and Auditor, with a fake decider, a test
// provider and an in-memory secret reader: the audit chain, denials, refusals, fail-closed audit
// and provider errors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type {
  AccessDecision,
  AccessRequest,
  CredentialProviderRecord,
  ServerWorkload,
} from '../../core/access.ts';
import type { AuditRecord } from '../../core/audit.ts';
import { ManualClock } from '../../core/clock.ts';
import type { Entry } from '../../core/entry.ts';
import { NotFoundError, UnavailableError } from '../../core/errors.ts';
import type {
  CredentialProvider,
  CredentialProviderDeps,
} from '../../plugins/credential-providers/credential-provider.ts';
import { openStore } from '../../store/open.ts';
import type { AuditStore, Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import { EntryIndex } from '../registration/entry-index.ts';
import { CredentialBroker, type ReleaseAgent } from './broker.ts';
import type { ReleaseInput } from './release-input.ts';
import { clientEntry, ordersDb } from './testing/fixtures.ts';

const NOW = Date.UTC(2030, 0, 1);
const SECRET = 'hunter2-very-secret-value';
const AGENT = 'spiffe://example.org/spire/agent/join_token/a1';
const OTHER_AGENT = 'spiffe://example.org/spire/agent/join_token/a2';
const CLIENT = 'spiffe://example.org/ns/prod/sa/web';
const ENTRY_ID = '11111111-1111-4111-8111-111111111111';

const entry: Entry = clientEntry(ENTRY_ID, CLIENT, AGENT, NOW);
const agent: ReleaseAgent = { spiffeId: AGENT, selectors: [] };
const server: ServerWorkload = ordersDb(NOW);
const providerRecord: CredentialProviderRecord = {
  name: 'orders-password',
  type: 'test-static',
  config: { secret: 'orders' },
  createdAt: NOW,
  updatedAt: NOW,
};

const allow: AccessDecision = {
  allowed: true,
  reason: 'allowed',
  policy: 'web-to-orders',
  credentialProvider: 'orders-password',
  failedCondition: '',
};
const denyCondition: AccessDecision = {
  allowed: false,
  reason: 'condition-false',
  policy: 'web-to-orders',
  credentialProvider: '',
  failedCondition: 'now.getHours() < 18',
};

const input = (over: Partial<ReleaseInput> = {}): ReleaseInput => ({
  entryId: ENTRY_ID,
  selectors: ['unix:uid:1000', 'unix:gid:1000'],
  attributes: { 'unix.uid': '1000' },
  server: 'orders-db',
  httpMethod: '',
  httpPath: '',
  httpHost: '',
  correlationId: 'agent-corr-0001',
  ...over,
});

/** A provider as the catalog would build one: reads its secret, never logs it. */
function testProvider(record: CredentialProviderRecord, deps: CredentialProviderDeps) {
  const p: CredentialProvider & { closed: boolean } = {
    type: record.type,
    name: record.name,
    closed: false,
    async release() {
      if (gate) {
        gate.entered = true;
        await gate.open;
      }
      if (failWith) throw failWith;
      const pw = new TextDecoder().decode(await deps.secrets.read(String(record.config.secret)));
      return {
        value: { kind: 'password', username: 'web', password: pw },
        expiresAt: deps.now() + 60_000,
        leaseId: 'lease-1',
      };
    },
    async close() {
      p.closed = true;
    },
  };
  built.push(p);
  return p;
}

let dir = '';
let n = 0;
let store: Store;
let auditState: { broken: boolean };
let clock: ManualClock;
let decision: AccessDecision;
let decided: AccessRequest[];
let failWith: unknown;
let gate: { entered: boolean; open: Promise<void> } | undefined;
let built: Array<CredentialProvider & { closed: boolean }>;
let records: { server: ServerWorkload | null; provider: CredentialProviderRecord | null };
let logged: unknown[];
let broker: CredentialBroker;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-broker-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(async () => {
  clock = new ManualClock(NOW);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, `s${n++}.db`) }, clock);
  auditState = { broken: false };
  const audit: AuditStore = {
    ...store.audit,
    appendMany: (e) =>
      auditState.broken ? Promise.reject(new Error('audit sink down')) : store.audit.appendMany(e),
  };
  const auditor = new Auditor(clock, { ...store, audit });
  const index = new EntryIndex('spiffe://example.org/spire/server');
  index.upsert(entry);
  decision = allow;
  decided = [];
  failWith = undefined;
  gate = undefined;
  built = [];
  logged = [];
  records = { server, provider: providerRecord };
  const secrets = new Map([['orders', new TextEncoder().encode(SECRET)]]);
  broker = new CredentialBroker({
    entries: index,
    decider: {
      decide: (req) => {
        decided.push(req);
        return decision;
      },
    },
    records: {
      serverWorkload: async (name) => (name === records.server?.name ? records.server : null),
      credentialProvider: async (name) =>
        name === records.provider?.name ? records.provider : null,
    },
    auditor,
    clock,
    buildProvider: testProvider,
    providerDeps: {
      secrets: {
        read: async (name) => {
          const v = secrets.get(name);
          if (!v) throw new NotFoundError(`secret "${name}" not found`);
          return v;
        },
      },
      minting: {
        jwtSvid: () => Promise.reject(new Error('unused')),
        accessToken: () => Promise.reject(new Error('unused')),
      },
      leases: { record: async () => {}, activate: async () => true },
      now: () => clock.now(),
      fetch: () => Promise.reject(new Error('unused')),
    },
    log: (msg, fields) => logged.push({ msg, fields }),
  });
});
afterEach(async () => {
  await broker.close();
  await store.close();
});

const all = () => store.audit.list({}, 1000);

function assertNoSecret(rs: readonly AuditRecord[]) {
  const text = JSON.stringify(rs);
  assert.ok(!text.includes(SECRET), 'no audit record carries the secret value');
}

describe('CredentialBroker.release', () => {
  it('allowed: releases, with three records under one correlation id and no secret', async () => {
    const out = await broker.release(agent, input());
    assert.equal(out.kind, 'credential');
    if (out.kind !== 'credential') return;
    assert.deepEqual(out.credential.value, { kind: 'password', username: 'web', password: SECRET });
    assert.equal(out.client, CLIENT);
    assert.equal(out.present, 'postgres-password');
    assert.equal(out.policy, 'web-to-orders');
    assert.equal(out.provider, 'orders-password');
    assert.equal(out.correlationId, 'agent-corr-0001');
    // The decider saw the client of the entry, with the attested selectors and attributes.
    assert.equal(decided.length, 1);
    assert.equal(decided[0]?.client.spiffeId, CLIENT);
    assert.equal(decided[0]?.at, NOW);
    assert.deepEqual(decided[0]?.client.attributes, { 'unix.uid': '1000' });

    const rs = await store.audit.list({ correlationId: 'agent-corr-0001' }, 100);
    assert.deepEqual(
      rs.map((r) => [r.action, r.actor, r.target, r.outcome]),
      [
        ['access.request', CLIENT, 'orders-db', 'success'],
        ['access.authorization', CLIENT, 'orders-db', 'success'],
        ['access.credential', CLIENT, 'orders-db', 'success'],
      ],
    );
    assert.deepEqual(rs[0]?.details, {
      agent: AGENT,
      attributes: { 'unix.uid': '1000' },
      client: CLIENT,
      entry_id: ENTRY_ID,
      selectors: ['unix:uid:1000', 'unix:gid:1000'],
      server: 'orders-db',
    });
    assert.deepEqual(rs[1]?.details, {
      decision: 'allow',
      failed_condition: '',
      policy: 'web-to-orders',
      reason: 'allowed',
    });
    assert.deepEqual(rs[2]?.details, {
      expires_at: NOW + 60_000,
      lease_id: 'lease-1',
      policy: 'web-to-orders',
      provider: 'orders-password',
    });
    assertNoSecret(await all());
  });

  it('a malformed agent correlation id is replaced by a fresh one', async () => {
    const out = await broker.release(agent, input({ correlationId: 'bad id with spaces' }));
    assert.match(out.correlationId, /^[0-9a-f-]{36}$/);
    const rs = await store.audit.list({ correlationId: out.correlationId }, 100);
    assert.equal(rs.length, 3);
  });

  it('HTTP facts reach the decision and the request record', async () => {
    await broker.release(
      agent,
      input({ httpMethod: 'GET', httpPath: '/v1/orders', httpHost: 'api:443' }),
    );
    assert.deepEqual(decided[0]?.request, { method: 'GET', path: '/v1/orders', host: 'api:443' });
    const [req] = await store.audit.list({ action: 'access.request' }, 10);
    assert.deepEqual(req?.details.request, {
      method: 'GET',
      path: '/v1/orders',
      host: 'api:443',
    });
  });

  it('denied: two records and a Denial naming the failing condition', async () => {
    decision = denyCondition;
    const out = await broker.release(agent, input());
    assert.deepEqual(out, {
      kind: 'denial',
      reason: 'condition-false',
      policy: 'web-to-orders',
      failedCondition: 'now.getHours() < 18',
      correlationId: 'agent-corr-0001',
    });
    const rs = await all();
    assert.deepEqual(
      rs.map((r) => [r.action, r.outcome]),
      [
        ['access.request', 'success'],
        ['access.authorization', 'denied'],
      ],
    );
    assert.equal(rs[1]?.details.failed_condition, 'now.getHours() < 18');
    assert.equal(built.length, 0, 'no provider is built for a denial');
  });

  it('an agent asking for an entry it is not authorized for is refused and audited', async () => {
    await assert.rejects(broker.release({ spiffeId: OTHER_AGENT, selectors: [] }, input()), {
      name: 'PermissionDeniedError',
      message: `agent is not authorized for entry "${ENTRY_ID}"`,
    });
    const rs = await all();
    assert.deepEqual(
      rs.map((r) => [r.action, r.actor, r.outcome]),
      [['access.request', OTHER_AGENT, 'denied']],
    );
    assert.equal(rs[0]?.details.entry_id, ENTRY_ID);
    assert.equal(decided.length, 0);
  });

  it('attested selectors that do not carry the entry selectors are refused and audited', async () => {
    await assert.rejects(broker.release(agent, input({ selectors: ['unix:uid:0'] })), {
      name: 'PermissionDeniedError',
      message: `the attested selectors do not match entry "${ENTRY_ID}" (missing 1 of its selectors)`,
    });
    const rs = await all();
    assert.deepEqual(
      rs.map((r) => [r.action, r.outcome]),
      [['access.request', 'denied']],
    );
    assert.equal(decided.length, 0);
  });

  it('audit failure: nothing is decided or released', async () => {
    auditState.broken = true;
    await assert.rejects(broker.release(agent, input()), /audit sink down/);
    assert.equal(decided.length, 0);
    assert.equal(built.length, 0);
  });

  it('audit failure after the release: the credential is not returned', async () => {
    // Break the sink while the provider releases, before access.credential is written.
    let open = () => {};
    gate = { entered: false, open: new Promise<void>((r) => (open = r)) };
    const out = broker.release(agent, input());
    await waitFor(async () => gate?.entered === true);
    auditState.broken = true;
    open();
    await assert.rejects(out, /audit sink down/);
    assert.equal((await all()).length, 2, 'request and authorization only');
  });

  it('provider errors: named, without secrets, and audited', async () => {
    failWith = new UnavailableError('token endpoint https://idp.test/token: invalid_client');
    await assert.rejects(broker.release(agent, input()), {
      name: 'UnavailableError',
      message:
        'credential provider "orders-password": token endpoint https://idp.test/token: invalid_client',
    });
    failWith = new Error(`connect ECONNREFUSED password=${SECRET}`);
    await assert.rejects(broker.release(agent, input({ correlationId: 'agent-corr-0002' })), {
      name: 'UnavailableError',
      message: 'credential provider "orders-password" failed (correlation id agent-corr-0002)',
    });
    const rs = await store.audit.list({ action: 'access.credential' }, 10);
    assert.deepEqual(
      rs.map((r) => [r.outcome, r.details.code]),
      [
        ['error', 'unavailable'],
        ['error', 'unavailable'],
      ],
    );
    assertNoSecret(await all());
    assert.ok(!JSON.stringify(logged).includes(SECRET), 'the log carries no secret either');
  });

  it('a missing secret is a failed precondition naming the provider', async () => {
    records.provider = { ...providerRecord, config: { secret: 'missing' }, updatedAt: NOW + 1 };
    await assert.rejects(broker.release(agent, input()), {
      name: 'FailedPreconditionError',
      message: 'credential provider "orders-password": secret "missing" not found',
    });
  });

  it('a provider deleted since the decision: failed precondition, nothing released', async () => {
    records.provider = null;
    await assert.rejects(broker.release(agent, input()), {
      name: 'FailedPreconditionError',
      message: 'credential provider "orders-password" does not exist',
    });
  });

  it('provider instances are cached per record and rebuilt (old one closed) on change', async () => {
    await broker.release(agent, input());
    await broker.release(agent, input());
    assert.equal(built.length, 1);
    records.provider = { ...providerRecord, updatedAt: NOW + 5 };
    await broker.release(agent, input());
    assert.equal(built.length, 2);
    await waitFor(async () => built[0]?.closed === true);
    await broker.close();
    assert.equal(built[1]?.closed, true);
  });

  it('bad input is refused before anything is read or recorded', async () => {
    await assert.rejects(broker.release(agent, input({ server: 'Not A Name' })), {
      name: 'InvalidArgumentError',
    });
    await assert.rejects(
      broker.release(agent, input({ selectors: Array(65).fill('unix:uid:1') })),
      { message: 'selectors: at most 64' },
    );
    await assert.rejects(broker.release(agent, input({ attributes: { k: 'x'.repeat(1025) } })), {
      message: 'attributes: value of "k" is longer than 1024 bytes',
    });
    await assert.rejects(broker.release(agent, input({ httpMethod: 'get', httpPath: '/' })), {
      name: 'InvalidArgumentError',
    });
    assert.deepEqual(await all(), []);
  });
});

async function waitFor(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
