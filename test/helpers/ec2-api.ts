// A local stand-in of the EC2 API (Query protocol, Version 2016-11-15) for the aws_iid
// attestor's DescribeInstances: it verifies each request's SigV4 signature with the AWS SDK's own
// signer (@smithy/signature-v4) and the credentials it was given — independent of Tessera's
// signer — and answers with XML shaped exactly as EC2 answers (DescribeInstancesResponse, or
// Response/Errors/Error for an error). A bad signature gets EC2's AuthFailure; `answer` can
// replace the answer (an error, garbage) to test refusals.
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';
import { SignatureV4 } from '@smithy/signature-v4';

export interface Ec2Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface Ec2InstanceFixture {
  readonly ownerId: string;
  readonly instanceId: string;
  readonly tags: readonly [string, string][];
  readonly groups: readonly [string, string][];
  readonly instanceProfileArn?: string;
  /** instanceState/name; default running. */
  readonly state?: string;
}

export interface Ec2StandIn {
  readonly url: string;
  /** Every DescribeInstances request whose signature verified: its form fields. */
  readonly requests: URLSearchParams[];
  /** Replaces the answer for verified requests; null: describe the fixture. */
  answer: { status: number; body: string } | null;
  close(): Promise<void>;
}

class Sha256 {
  readonly #h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key =
      secret === undefined || typeof secret === 'string'
        ? secret
        : ArrayBuffer.isView(secret)
          ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
          : new Uint8Array(secret);
    this.#h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: Uint8Array | string): void {
    this.#h.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/ec2\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

export const ec2Error = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>`;

export function describeInstancesXml(i: Ec2InstanceFixture): string {
  const tags = i.tags.map(([k, v]) => `<item><key>${k}</key><value>${v}</value></item>`).join('');
  const groups = i.groups
    .map(([id, name]) => `<item><groupId>${id}</groupId><groupName>${name}</groupName></item>`)
    .join('');
  const profile = i.instanceProfileArn
    ? `<iamInstanceProfile><arn>${i.instanceProfileArn}</arn><id>AIPAJ2EXAMPLE3FTWXYZ</id></iamInstanceProfile>`
    : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <ownerId>${i.ownerId}</ownerId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>${i.instanceId}</instanceId>
                    <imageId>ami-5fb8c835</imageId>
                    <instanceState><code>16</code><name>${i.state ?? 'running'}</name></instanceState>
                    <privateDnsName>ip-10-158-112-84.us-west-2.compute.internal</privateDnsName>
                    <instanceType>t2.micro</instanceType>
                    <launchTime>2016-11-19T16:32:11.000Z</launchTime>
                    <placement><availabilityZone>us-west-2b</availabilityZone><tenancy>default</tenancy></placement>
                    <monitoring><state>disabled</state></monitoring>
                    <subnetId>subnet-56f5f633</subnetId>
                    <vpcId>vpc-11112222</vpcId>
                    <privateIpAddress>10.158.112.84</privateIpAddress>
                    <groupSet>${groups}</groupSet>
                    <architecture>x86_64</architecture>
                    <rootDeviceType>ebs</rootDeviceType>
                    <rootDeviceName>/dev/xvda</rootDeviceName>
                    ${profile}
                    <tagSet>${tags}</tagSet>
                    <networkInterfaceSet>
                        <item>
                            <networkInterfaceId>eni-0598c7d356eba48d7</networkInterfaceId>
                            <groupSet><item><groupId>sg-0aaaaaaaaaaaaaaaa</groupId><groupName>eni-only</groupName></item></groupSet>
                        </item>
                    </networkInterfaceSet>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
</DescribeInstancesResponse>`;
}

export async function startEc2StandIn(
  creds: Ec2Credentials,
  instance: Ec2InstanceFixture,
): Promise<Ec2StandIn> {
  const standIn: Ec2StandIn = {
    url: '',
    requests: [],
    answer: null,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    verify(req, creds).then(
      ({ ok, form }) => {
        res.setHeader('content-type', 'text/xml;charset=UTF-8');
        if (!ok) {
          res.writeHead(401);
          res.end(
            ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials'),
          );
          return;
        }
        standIn.requests.push(form);
        if (standIn.answer) {
          res.writeHead(standIn.answer.status);
          res.end(standIn.answer.body);
        } else if (
          form.get('Action') !== 'DescribeInstances' ||
          form.get('Version') !== '2016-11-15'
        ) {
          res.writeHead(400);
          res.end(ec2Error('InvalidAction', 'The action or operation requested is invalid.'));
        } else if (form.get('InstanceId.1') !== instance.instanceId) {
          res.writeHead(400);
          res.end(
            ec2Error(
              'InvalidInstanceID.NotFound',
              `The instance ID '${form.get('InstanceId.1')}' does not exist`,
            ),
          );
        } else {
          res.writeHead(200);
          res.end(describeInstancesXml(instance));
        }
      },
      () => {
        res.writeHead(500);
        res.end(ec2Error('InternalError', 'stand-in failure'));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(standIn, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** Re-signs the request with the SDK's signer and the known key; compares Authorization. */
async function verify(req: IncomingMessage, creds: Ec2Credentials) {
  const raw = await buffer(req);
  const form = new URLSearchParams(raw.toString('utf8'));
  const m = AUTH.exec(req.headers.authorization ?? '');
  if (!m || req.method !== 'POST') return { ok: false, form };
  const [, , , region, signedList] = m as unknown as string[];
  const amzDate = String(req.headers['x-amz-date']);
  const signingDate = new Date(
    amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
  );
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
    },
    region: region!,
    service: 'ec2',
    sha256: Sha256,
    applyChecksum: false,
  });
  const headers: Record<string, string> = {};
  for (const name of signedList!.split(';')) headers[name] = String(req.headers[name]);
  // The SDK signs x-amz-security-token itself when it has a session token: it must be signed.
  if (creds.sessionToken && headers['x-amz-security-token'] !== creds.sessionToken)
    return { ok: false, form };
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: (req.url ?? '/').split('?')[0] as string,
      query: {},
      headers,
      body: raw,
    },
    { signingDate },
  );
  return { ok: signed.headers.authorization === req.headers.authorization, form };
}
