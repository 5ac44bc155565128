// The cold path of a cloud credential (bench/cloud-credentials.bench.ts): what the server does
// when no cache answers — the access decision over a policy index, then the aws-sts provider's
// AssumeRoleWithWebIdentity at the AWS STS stand-in, which (like AWS) fetches the issuer's OIDC
// discovery document and JWKS and verifies the JWT-SVID. A new client SPIFFE ID for every call,
// so neither the provider's cache nor the stand-in's answers repeat.
import type { AccessDecision } from '../src/core/access.ts';
import { createCredentialProvider } from '../src/plugins/credential-providers/catalog.ts';
import { startAwsStsStandIn } from '../src/plugins/credential-providers/testing/aws-sts-stand-in.ts';
import {
  deps,
  record,
  request,
  testClient,
  testServer,
} from '../src/plugins/credential-providers/testing/fakes.ts';
import { startTesseraIssuer } from '../src/plugins/credential-providers/testing/tessera-issuer.ts';
import { buildPolicyIndex, decideAccess } from '../src/server/access/policy-index.ts';
import { allow, request as accessRequest, server } from '../src/server/access/testing/fixtures.ts';

const ROLE = 'arn:aws:iam::123456789012:role/bench';

/** Latencies (ms) of `n` sequential cold releases. */
export async function coldPath(n: number): Promise<number[]> {
  const issuer = await startTesseraIssuer({ keyType: 'rsa-2048' });
  const sts = await startAwsStsStandIn({
    arn: ROLE,
    issuer: issuer.issuer,
    audience: 'sts.amazonaws.com',
    subjects: ['spiffe://example.org/bench/*'],
  });
  try {
    const built = buildPolicyIndex(
      [server('s3')],
      [
        allow('bench-s3', 'spiffe://example.org/bench/*', {
          server: 's3',
          credentialProvider: 'aws',
        }),
      ],
    );
    const provider = createCredentialProvider(
      record('aws-sts', { role_arn: ROLE, sts_endpoint: sts.url }, 'aws'),
      deps({ minting: issuer }),
    );
    const check = (d: AccessDecision) => {
      if (!d.allowed) throw new Error(`denied: ${JSON.stringify(d)}`);
    };
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const spiffeId = `spiffe://example.org/bench/w${i}`;
      const t0 = performance.now();
      check(decideAccess(built.index, accessRequest(spiffeId, { server: 's3' })));
      const c = await provider.release(
        request({ client: { ...testClient, spiffeId }, server: { ...testServer, name: 's3' } }),
      );
      if (c.value.kind !== 'aws') throw new Error('not AWS credentials');
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    await sts.close();
    await issuer.close();
  }
}
