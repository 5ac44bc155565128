// aws_iid's refresher: re-describes the instance a node record names (from its document
// selectors) against the EC2 stand-in, and derives the EC2 selectors anew; a terminated instance,
// an EC2 error or a record naming no instance is a failure, never new selectors.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Ec2StandIn, ec2Error, startEc2StandIn } from '../../../../test/helpers/ec2-api.ts';
import type { Selector } from '../../../core/selector.ts';
import { awsIidPlugin } from './plugin.ts';
import { createAwsIidRefresher } from './refresh.ts';

const CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/EXAMPLEKEY' };
const instance = {
  ownerId: '111122223333',
  instanceId: 'i-1234567890abcdef0',
  tags: [['env', 'prod']] as [string, string][],
  groups: [['sg-0123456789abcdef0', 'web']] as [string, string][],
  state: 'running',
};
const s = (value: string): Selector => ({ type: 'aws_iid', value });
const STORED = [
  s('account:111122223333'),
  s('region:us-west-2'),
  s('instance_id:i-1234567890abcdef0'),
  s('tag:env:old'),
  s('sg:id:sg-0aaaaaaaaaaaaaaaa'),
  s('sg:name:gone'),
  s('instance_profile:arn:aws:iam::111122223333:instance-profile/old'),
];

let ec2: Ec2StandIn;
before(async () => {
  ec2 = await startEc2StandIn(CREDS, instance);
});
after(() => ec2?.close());

const refresher = (tags = true) =>
  createAwsIidRefresher({
    ec2: {
      endpoint: ec2.url,
      tags,
      instanceProfile: true,
      credentials: { ...CREDS, sessionToken: '' },
      fetch,
    },
    everyMs: 1000,
    now: () => Date.now(),
  });

describe('aws_iid refresh', () => {
  it('keeps the document selectors and replaces those from EC2', async () => {
    ec2.answer = null;
    assert.deepEqual(await refresher().refresh(STORED), {
      selectors: [
        s('account:111122223333'),
        s('region:us-west-2'),
        s('instance_id:i-1234567890abcdef0'),
        s('tag:env:prod'),
        s('sg:id:sg-0123456789abcdef0'),
        s('sg:name:web'),
      ],
    });
    assert.equal(ec2.requests.at(-1)?.get('InstanceId.1'), 'i-1234567890abcdef0');
    // tags: false drops tag selectors, as at attestation.
    const r = await refresher(false).refresh(STORED);
    assert.ok('selectors' in r && !r.selectors.some((x) => x.value.startsWith('tag:')));
  });

  it('a terminated instance is a failure, not new selectors', async () => {
    instance.state = 'terminated';
    try {
      assert.deepEqual(await refresher().refresh(STORED), {
        failed: 'aws_iid: instance i-1234567890abcdef0 is terminated',
      });
    } finally {
      instance.state = 'running';
    }
  });

  it("an EC2 error is a failure in EC2's words", async () => {
    ec2.answer = { status: 503, body: ec2Error('RequestLimitExceeded', 'Request limit exceeded.') };
    try {
      assert.deepEqual(await refresher().refresh(STORED), {
        failed: `aws_iid: the EC2 API (${ec2.url}) refused DescribeInstances: RequestLimitExceeded (Request limit exceeded.) (HTTP 503)`,
      });
    } finally {
      ec2.answer = null;
    }
  });

  it('a record naming no single account, region and instance asks nothing', async () => {
    const asked = ec2.requests.length;
    const failed = {
      failed: 'aws_iid: the node record names no single account, region and instance',
    };
    assert.deepEqual(await refresher().refresh(STORED.slice(1)), failed);
    assert.deepEqual(
      await refresher().refresh([...STORED, s('instance_id:i-0fedcba9876543210')]),
      failed,
    );
    assert.equal(ec2.requests.length, asked);
  });
});

describe('aws_iid ec2_api.refresh_interval', () => {
  const parse = (refresh_interval?: unknown) =>
    awsIidPlugin.serverSchema.safeParse({
      account_ids: ['111122223333'],
      ec2_api: refresh_interval === undefined ? {} : { refresh_interval },
    });
  const ms = (v?: unknown) => {
    const r = parse(v);
    assert.ok(r.success, JSON.stringify(r.error?.issues));
    return r.data.ec2_api?.refresh_interval;
  };

  it('defaults to 5m; 0 is off; durations between 1s and 24h', () => {
    assert.equal(ms(), 300_000);
    assert.equal(ms('0'), 0);
    assert.equal(ms(0), 0);
    assert.equal(ms('0s'), 0);
    assert.equal(ms('1s'), 1000);
    assert.equal(ms('1h30m'), 5_400_000);
    assert.equal(ms(60), 60_000);
  });

  it('refuses anything else, naming the key', () => {
    for (const [v, message] of [
      ['500ms', 'must be 0 (off) or between 1s and 24h, got "500ms"'],
      ['25h', 'must be 0 (off) or between 1s and 24h, got "25h"'],
      [
        'soon',
        'invalid duration "soon" (use a number with a unit: ms, s, m, h, d; e.g. 90s, 1h30m)',
      ],
      ['-1m', 'invalid duration "-1m" (use a number with a unit: ms, s, m, h, d; e.g. 90s, 1h30m)'],
    ] as const) {
      const r = parse(v);
      assert.equal(r.success, false, v);
      assert.deepEqual(
        r.error?.issues.map((i) => [i.path.join('.'), i.message]),
        [['ec2_api.refresh_interval', message]],
      );
    }
  });
});
