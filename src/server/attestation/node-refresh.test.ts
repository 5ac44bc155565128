// The refresh of attested nodes' platform attributes, over a real SQLite store and aws_iid's
// refresher against the EC2 stand-in: a changed tag is written once with its audit record and a
// change event; an unchanged node is left alone; a failure is audited once and keeps the record;
// banned nodes are not asked about; runs are bounded and continue where the last one stopped; two
// servers refreshing the same node write and audit the change once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { type Ec2StandIn, ec2Error, startEc2StandIn } from '../../../test/helpers/ec2-api.ts';
import { ManualClock } from '../../core/clock.ts';
import type { AttestedNode } from '../../core/node.ts';
import type { Selector } from '../../core/selector.ts';
import { createAwsIidRefresher } from '../../plugins/node-attestors/aws-iid/refresh.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import { NodeRefresh } from './node-refresh.ts';

const T0 = 1_700_000_000_000;
const CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/EXAMPLEKEY' };
const ID = 'i-1234567890abcdef0';
const instance = {
  ownerId: '111122223333',
  instanceId: ID,
  tags: [['env', 'prod']] as [string, string][],
  groups: [['sg-0123456789abcdef0', 'web']] as [string, string][],
};
const s = (value: string): Selector => ({ type: 'aws_iid', value });
const agentId = (i: string) =>
  `spiffe://example.org/spire/agent/aws_iid/111122223333/us-west-2/${i}`;

function awsNode(instanceId: string, tag: string, over: Partial<AttestedNode> = {}): AttestedNode {
  return {
    spiffeId: agentId(instanceId),
    attestationType: 'aws_iid',
    serialNumber: '01',
    newSerialNumber: '',
    expiresAt: T0 + 3_600_000,
    selectors: [
      s('account:111122223333'),
      s('region:us-west-2'),
      s(`instance_id:${instanceId}`),
      s(`tag:env:${tag}`),
      s('sg:id:sg-0123456789abcdef0'),
      s('sg:name:web'),
    ],
    banned: false,
    canReattest: false,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

let dir: string;
let ec2: Ec2StandIn;
let store: Store;
let clock: ManualClock;
let n = 0;
const warnings: string[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-node-refresh-'));
  ec2 = await startEc2StandIn(CREDS, instance);
});
after(async () => {
  await ec2?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  clock = new ManualClock(T0 + 1000);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, `s${n++}.db`) }, clock);
  ec2.answer = null;
  ec2.requests.length = 0;
  warnings.length = 0;
});
afterEach(() => store.close());

function refresh(o: { maxNodesPerRun?: number } = {}) {
  return new NodeRefresh({
    store,
    auditor: new Auditor(clock, store),
    clock,
    type: 'aws_iid',
    refresher: createAwsIidRefresher({
      ec2: {
        endpoint: ec2.url,
        tags: true,
        instanceProfile: true,
        credentials: { ...CREDS, sessionToken: '' },
        fetch,
      },
      everyMs: 1000,
      now: () => clock.now(),
    }),
    warn: (_f, msg) => warnings.push(msg),
    ...o,
  });
}

const audits = (action: string) => store.audit.list({ action }, 100);

describe('node attribute refresh', () => {
  it('writes a changed tag once, audited, with a change event; leaves an unchanged node alone', async () => {
    await store.nodes.upsert(awsNode(ID, 'dev'));
    const changesBefore = await store.changes.latestId();
    const r = refresh();
    assert.deepEqual(await r.run(), { checked: 1, changed: 1, failed: 0 });
    const stored = await store.nodes.get(agentId(ID));
    assert.deepEqual(stored, {
      ...awsNode(ID, 'prod'),
      updatedAt: T0 + 1000,
    });
    assert.equal(await store.changes.latestId(), changesBefore + 1);
    const [record, ...more] = await audits('node.attributes_refreshed');
    assert.equal(more.length, 0);
    assert.equal(record?.target, agentId(ID));
    assert.equal(record?.outcome, 'success');
    assert.deepEqual(record?.details, {
      attestor: 'aws_iid',
      changed: ['aws_iid:tag'],
      added: 1,
      removed: 1,
    });
    // Again: same attributes, nothing written.
    assert.deepEqual(await r.run(), { checked: 1, changed: 0, failed: 0 });
    assert.equal(await store.changes.latestId(), changesBefore + 1);
    assert.equal((await audits('node.attributes_refreshed')).length, 1);
  });

  it('a failure keeps the record, audited once per reason; a later success refreshes', async () => {
    await store.nodes.upsert(awsNode(ID, 'dev'));
    ec2.answer = { status: 403, body: ec2Error('UnauthorizedOperation', 'Not authorized.') };
    const r = refresh();
    assert.deepEqual(await r.run(), { checked: 1, changed: 0, failed: 1 });
    assert.deepEqual(await r.run(), { checked: 1, changed: 0, failed: 1 });
    assert.deepEqual(await store.nodes.get(agentId(ID)), awsNode(ID, 'dev'));
    const failed = await audits('node.attributes_refresh_failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.outcome, 'error');
    assert.deepEqual(failed[0]?.details, {
      attestor: 'aws_iid',
      reason: `aws_iid: the EC2 API (${ec2.url}) refused DescribeInstances: UnauthorizedOperation (Not authorized.) (HTTP 403)`,
    });
    assert.equal(warnings.length, 1);
    ec2.answer = null;
    assert.deepEqual(await r.run(), { checked: 1, changed: 1, failed: 0 });
    assert.deepEqual(
      (await store.nodes.get(agentId(ID)))?.selectors,
      awsNode(ID, 'prod').selectors,
    );
  });

  it('asks nothing about banned nodes or other attestors', async () => {
    await store.nodes.upsert(awsNode(ID, 'dev', { banned: true }));
    await store.nodes.upsert({
      ...awsNode('i-0fedcba9876543210', 'dev'),
      attestationType: 'join_token',
    });
    assert.deepEqual(await refresh().run(), { checked: 0, changed: 0, failed: 0 });
    assert.equal(ec2.requests.length, 0);
    assert.deepEqual((await store.nodes.get(agentId(ID)))?.selectors, awsNode(ID, 'dev').selectors);
  });

  it('bounds each run and continues where the last stopped', async () => {
    const ids = ['i-00000000000000001', 'i-00000000000000002', 'i-00000000000000003'];
    for (const i of ids) await store.nodes.upsert(awsNode(i, 'prod'));
    const r = refresh({ maxNodesPerRun: 2 });
    const asked = async () => {
      const from = ec2.requests.length;
      await r.run();
      return ec2.requests
        .slice(from)
        .map((q) => q.get('InstanceId.1'))
        .sort();
    };
    assert.deepEqual(await asked(), ids.slice(0, 2));
    assert.deepEqual(await asked(), ids.slice(2));
    assert.deepEqual(await asked(), ids.slice(0, 2));
  });

  it('two servers refreshing the same node write and audit the change once', async () => {
    await store.nodes.upsert(awsNode(ID, 'dev'));
    const runs = await Promise.all([refresh().run(), refresh().run()]);
    assert.equal(runs[0].changed + runs[1].changed, 1);
    assert.equal((await audits('node.attributes_refreshed')).length, 1);
  });
});
