// aws_iid with the EC2 API: DescribeInstances against a local stand-in that verifies the SigV4
// signature with the AWS SDK's own signer and answers as EC2 does (test/helpers/ec2-api.ts).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  type AwsSigner,
  identityDocument,
  makeAwsSigner,
  signIid,
} from '../../../../test/helpers/aws-iid.ts';
import {
  type Ec2StandIn,
  describeInstancesXml,
  ec2Error,
  startEc2StandIn,
} from '../../../../test/helpers/ec2-api.ts';
import { noChallenge, refused } from '../testing/attestation.ts';
import { encodeAwsIidPayload } from './document.ts';
import { trustedCertificate } from './pkcs7.ts';
import { type Ec2ApiOptions, createAwsIidAttestor } from './server.ts';

const CREDS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'FQoGZXIvYXdzEXAMPLE//session',
};
const INSTANCE = {
  ownerId: '111122223333',
  instanceId: 'i-1234567890abcdef0',
  tags: [
    ['env', 'prod'],
    ['team', 'payments'],
  ] as [string, string][],
  groups: [['sg-0123456789abcdef0', 'web']] as [string, string][],
  instanceProfileArn: 'arn:aws:iam::111122223333:instance-profile/payments-api',
};

let aws: AwsSigner;
let ec2: Ec2StandIn;
let payload: Uint8Array;

before(async () => {
  aws = makeAwsSigner('aws');
  ec2 = await startEc2StandIn(CREDS, INSTANCE);
  const doc = identityDocument();
  payload = encodeAwsIidPayload(doc, signIid(doc, [aws]));
});
after(async () => {
  await ec2?.close();
  rmSync(aws.dir, { recursive: true, force: true });
});

function attestor(o: Partial<Ec2ApiOptions> = {}) {
  return createAwsIidAttestor({
    certificates: [{ ...trustedCertificate(aws.certPem), regions: null }],
    accountIds: new Set(['111122223333']),
    allowReattestation: false,
    now: () => Date.now(),
    ec2: {
      endpoint: ec2.url,
      tags: true,
      instanceProfile: true,
      credentials: CREDS,
      fetch,
      ...o,
    },
  });
}

const ec2Selectors = async (a = attestor()) =>
  (await a.attest(payload, noChallenge)).selectors
    .map((s) => `${s.type}:${s.value}`)
    .filter((s) => /^aws_iid:(tag|sg|instance_profile):/.test(s));

describe('aws_iid EC2 API', () => {
  it('adds tag, security group and instance profile selectors from a signed DescribeInstances', async () => {
    ec2.answer = null;
    assert.deepEqual(await ec2Selectors(), [
      'aws_iid:tag:env:prod',
      'aws_iid:tag:team:payments',
      'aws_iid:sg:id:sg-0123456789abcdef0',
      'aws_iid:sg:name:web',
      'aws_iid:instance_profile:arn:aws:iam::111122223333:instance-profile/payments-api',
    ]);
    const form = ec2.requests.at(-1);
    assert.equal(form?.get('Action'), 'DescribeInstances');
    assert.equal(form?.get('Version'), '2016-11-15');
    assert.equal(form?.get('InstanceId.1'), 'i-1234567890abcdef0');
  });

  it('leaves tags and the instance profile out when the config says so', async () => {
    assert.deepEqual(await ec2Selectors(attestor({ tags: false, instanceProfile: false })), [
      'aws_iid:sg:id:sg-0123456789abcdef0',
      'aws_iid:sg:name:web',
    ]);
  });

  it('works with long-term keys (no session token)', async () => {
    const longTerm = { ...CREDS, sessionToken: '' };
    const standIn = await startEc2StandIn(longTerm, INSTANCE);
    try {
      const a = attestor({ endpoint: standIn.url, credentials: longTerm });
      assert.equal((await ec2Selectors(a)).length, 5);
    } finally {
      await standIn.close();
    }
  });

  it('a signature EC2 cannot verify is refused with what EC2 said', async () => {
    await refused(
      attestor({ credentials: { ...CREDS, secretAccessKey: 'wrong' } }),
      payload,
      `aws_iid: the EC2 API (${ec2.url}) refused DescribeInstances: AuthFailure (AWS was not able to validate the provided access credentials) (HTTP 401)`,
    );
  });

  it('an EC2 error, garbage, another instance or account: refused naming it', async () => {
    const where = `the EC2 API (${ec2.url})`;
    const cases: [number, string, string][] = [
      [
        400,
        ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.'),
        `${where} refused DescribeInstances: UnauthorizedOperation (You are not authorized to perform this operation.) (HTTP 400)`,
      ],
      [
        200,
        'not xml at all {',
        `${where} answered HTTP 200 with no valid XML (text outside the root element)`,
      ],
      [
        200,
        '<!DOCTYPE x><x/>',
        `${where} answered HTTP 200 with no valid XML (DTDs are not accepted)`,
      ],
      [200, '<Other/>', `${where} answered <Other>, not DescribeInstancesResponse`],
      [
        200,
        '<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>',
        `${where} described 0 instances for i-1234567890abcdef0, not 1`,
      ],
      [
        200,
        describeInstancesXml({ ...INSTANCE, instanceId: 'i-0000000000000000f' }),
        `${where} described another instance than i-1234567890abcdef0`,
      ],
      [
        200,
        describeInstancesXml({ ...INSTANCE, ownerId: '444455556666' }),
        `${where} says instance i-1234567890abcdef0 is not owned by account 111122223333`,
      ],
      [
        200,
        describeInstancesXml({ ...INSTANCE, groups: [['sg-zz', 'web']] }),
        `${where} answered a malformed security group id`,
      ],
      [
        200,
        describeInstancesXml({ ...INSTANCE, instanceProfileArn: 'arn:aws:iam::1:user/x' }),
        `${where} answered a malformed instance profile ARN`,
      ],
      [
        200,
        describeInstancesXml({
          ...INSTANCE,
          tags: Array.from({ length: 51 }, (_, i): [string, string] => [`k${i}`, 'v']),
        }),
        `${where} answered more than 50 tagSet items`,
      ],
    ];
    try {
      for (const [status, body, message] of cases) {
        ec2.answer = { status, body };
        await refused(attestor(), payload, `aws_iid: ${message}`);
      }
    } finally {
      ec2.answer = null;
    }
  });

  it('an endpoint that does not answer is unavailable (nothing was decided)', async () => {
    await assert.rejects(
      attestor({ endpoint: 'http://127.0.0.1:1' }).attest(payload, noChallenge),
      {
        name: 'UnavailableError',
        message: /^the EC2 API \(http:\/\/127\.0\.0\.1:1\): cannot reach it/,
      },
    );
  });
});
