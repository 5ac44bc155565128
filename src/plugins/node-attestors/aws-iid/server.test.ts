import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  type AwsSigner,
  identityDocument,
  makeAwsSigner,
  signIid,
} from '../../../../test/helpers/aws-iid.ts';
import { awsImds } from '../../../../test/helpers/cloud-metadata.ts';
import type { NodeAttestor } from '../node-attestor.ts';
import { noChallenge, refused } from '../testing/attestation.ts';
import { awsIidAgent, fetchAwsIid } from './agent.ts';
import { AWS_PKCS7_CERTIFICATES } from './aws-certificates.ts';
import { encodeAwsIidPayload } from './document.ts';
import { trustedCertificate } from './pkcs7.ts';
import { AWS_IID_TYPE, type AwsTrustedCertificate, createAwsIidAttestor } from './server.ts';

let aws: AwsSigner;
let other: AwsSigner;
// The test certificates start when `before` makes them: evaluate against the clock after that.
const DAY = 86_400_000;

function attestor(
  o: { regions?: AwsTrustedCertificate['regions']; allow?: boolean; now?: number } = {},
): NodeAttestor {
  return createAwsIidAttestor({
    certificates: [{ ...trustedCertificate(aws.certPem), regions: o.regions ?? null }],
    accountIds: new Set(['111122223333']),
    allowReattestation: o.allow ?? false,
    now: () => o.now ?? Date.now(),
  });
}

const denied = (payload: Uint8Array, message: string, a = attestor()) =>
  refused(a, payload, message);

before(() => {
  aws = makeAwsSigner('aws');
  other = makeAwsSigner('other');
});
after(() => {
  rmSync(aws.dir, { recursive: true, force: true });
  rmSync(other.dir, { recursive: true, force: true });
});

describe('aws_iid server half', () => {
  it('admits a document signed by the trusted certificate: ID, selectors, trust on first use', async () => {
    const doc = identityDocument();
    const result = await attestor().attest(
      encodeAwsIidPayload(doc, signIid(doc, [aws])),
      noChallenge,
    );
    assert.deepEqual(result, {
      idSegments: ['111122223333', 'us-west-2', 'i-1234567890abcdef0'],
      selectors: [
        { type: AWS_IID_TYPE, value: 'account:111122223333' },
        { type: AWS_IID_TYPE, value: 'region:us-west-2' },
        { type: AWS_IID_TYPE, value: 'az:us-west-2b' },
        { type: AWS_IID_TYPE, value: 'instance_id:i-1234567890abcdef0' },
        { type: AWS_IID_TYPE, value: 'image_id:ami-5fb8c835' },
        { type: AWS_IID_TYPE, value: 'instance_type:t2.micro' },
      ],
      canReattest: false,
      trustOnFirstUse: true,
    });
    const again = await attestor({ allow: true }).attest(
      encodeAwsIidPayload(doc, signIid(doc, [aws], { md: 'sha256' })),
      noChallenge,
    );
    assert.equal(again.canReattest, true);
    assert.equal(again.trustOnFirstUse, false);
  });

  it('accepts an embedded certificate only when it is the trusted one', async () => {
    const doc = identityDocument();
    await attestor().attest(
      encodeAwsIidPayload(doc, signIid(doc, [aws], { certs: true })),
      noChallenge,
    );
    await denied(
      encodeAwsIidPayload(doc, signIid(doc, [aws], { extraCertFile: other.certFile })),
      'aws_iid: PKCS#7 carries a certificate that is not a trusted AWS certificate',
    );
  });

  it('refuses a second signer, an untrusted signer and a forged document', async () => {
    const doc = identityDocument();
    await denied(
      encodeAwsIidPayload(doc, signIid(doc, [aws, other])),
      'aws_iid: PKCS#7 must have exactly one signer (it has 2)',
    );
    await denied(
      encodeAwsIidPayload(doc, signIid(doc, [other])),
      'aws_iid: the PKCS#7 signer is not a trusted AWS certificate',
    );
    const forged = identityDocument({ accountId: '999999999999' });
    await denied(
      encodeAwsIidPayload(forged, signIid(doc, [aws])),
      'aws_iid: the document differs from the content the PKCS#7 signs',
    );
  });

  it('refuses a signature that does not verify (content altered inside the PKCS#7)', async () => {
    const doc = identityDocument();
    const der = Buffer.from(signIid(doc, [aws]), 'base64');
    // Flip one character of the embedded document ("us-west-2b" -> "us-west-2c").
    const i = der.indexOf(Buffer.from('us-west-2b'));
    der[i + 9] = 'c'.charCodeAt(0);
    const altered = doc.replace('us-west-2b', 'us-west-2c');
    await denied(
      encodeAwsIidPayload(altered, der.toString('base64')),
      'aws_iid: message digest does not match the document',
    );
  });

  it('refuses a forged signature value', async () => {
    const doc = identityDocument();
    const der = Buffer.from(signIid(doc, [aws]), 'base64');
    // The DSA signature's s integer ends the structure: change its last byte.
    der.writeUInt8((der.at(-1) ?? 0) ^ 0x01, der.length - 1);
    await denied(
      encodeAwsIidPayload(doc, der.toString('base64')),
      'aws_iid: PKCS#7 signature does not verify with the AWS certificate',
    );
  });

  it('refuses an account outside the allow-list and a certificate for another region', async () => {
    const doc = identityDocument({ accountId: '444455556666' });
    await denied(
      encodeAwsIidPayload(doc, signIid(doc, [aws])),
      'aws_iid: account 444455556666 is not allowed',
    );
    const ok = identityDocument();
    await denied(
      encodeAwsIidPayload(ok, signIid(ok, [aws])),
      "aws_iid: the signing certificate is not AWS's certificate for region us-west-2",
      attestor({ regions: ['ap-east-1'] }),
    );
  });

  it('refuses the certificate outside its validity period', async () => {
    const doc = identityDocument();
    await denied(
      encodeAwsIidPayload(doc, signIid(doc, [aws])),
      'aws_iid: the signing AWS certificate is outside its validity period',
      attestor({ now: Date.now() + 400 * DAY }),
    );
  });

  it('refuses malformed payloads and documents with a clear reason', async () => {
    await denied(Buffer.from('{'), 'aws_iid: payload is not valid JSON');
    await denied(
      Buffer.from('{"document":1}'),
      'aws_iid: payload must hold "document" and "pkcs7" strings',
    );
    await denied(encodeAwsIidPayload('{}', '!!'), 'aws_iid: pkcs7 is not base64');
    await denied(
      encodeAwsIidPayload('{}', 'AAAA'),
      'aws_iid: signature is not a PKCS#7 SignedData structure',
    );
    const bad = identityDocument({ instanceId: 'i-../../x' });
    await denied(
      encodeAwsIidPayload(bad, signIid(bad, [aws])),
      'aws_iid: the signed document has no valid "instanceId"',
    );
  });

  it("ships AWS's published certificates, each verifying its own signature", () => {
    assert.equal(AWS_PKCS7_CERTIFICATES.length, 7);
    for (const c of AWS_PKCS7_CERTIFICATES) {
      const x = new X509Certificate(c.pem);
      assert.ok(x.verify(x.publicKey), `self-signature of the ${String(c.regions)} certificate`);
      assert.match(x.subject, /O=Amazon Web Services LLC/);
    }
  });
});

describe('aws_iid agent half', () => {
  it('fetches the document and PKCS#7 through IMDSv2, and the server half admits them', async () => {
    const doc = identityDocument();
    const pkcs7 = signIid(doc, [aws]);
    const imds = await awsImds(() => ({ document: doc, pkcs7 }));
    try {
      // Without the session token IMDS answers 401, as the real one does with IMDSv1 disabled.
      const direct = await fetch(`${imds.url}/latest/dynamic/instance-identity/document`);
      assert.equal(direct.status, 401);
      const agent = awsIidAgent(new URL(imds.url));
      assert.equal(agent.canReattest, true);
      const result = await attestor().attest(await agent.payload(), noChallenge);
      assert.deepEqual(result.idSegments, ['111122223333', 'us-west-2', 'i-1234567890abcdef0']);
      assert.deepEqual(imds.requests.slice(-3), [
        'PUT /latest/api/token',
        'GET /latest/dynamic/instance-identity/document',
        'GET /latest/dynamic/instance-identity/pkcs7',
      ]);
      assert.throws(() => agent.answer(new Uint8Array(1)), {
        message: 'aws_iid attestation takes no challenge',
      });
    } finally {
      await imds.close();
    }
  });

  it('names the endpoint and status when IMDS refuses', async () => {
    const imds = await awsImds(() => ({ document: '', pkcs7: '' }));
    await imds.close();
    await assert.rejects(fetchAwsIid(new URL(imds.url)), {
      name: 'UnavailableError',
      message: new RegExp(`^AWS IMDS token: ${imds.url}/latest/api/token: `),
    });
  });
});
