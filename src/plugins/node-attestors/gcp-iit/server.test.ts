import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gceMetadata } from '../../../../test/helpers/cloud-metadata.ts';
import {
  type JwksServer,
  type TokenSigner,
  gceClaims,
  serveJwks,
  signToken,
  tokenSigner,
} from '../../../../test/helpers/cloud-tokens.ts';
import { JwksSource } from '../cloud-jwt.ts';
import type { NodeAttestor } from '../node-attestor.ts';
import { noChallenge, refused } from '../testing/attestation.ts';
import { gcpIitAgent } from './agent.ts';
import { GCP_IIT_TYPE, createGcpIitAttestor } from './server.ts';

const AUD = 'tessera-gcp-node-attestor';
let google: TokenSigner;
let forger: TokenSigner;
let jwks: JwksServer;

before(async () => {
  google = tokenSigner();
  forger = tokenSigner(google.kid); // same kid, other key: a forged signature
  jwks = await serveJwks([google]);
});
after(() => jwks.close());

function attestor(o: { allow?: boolean } = {}): NodeAttestor {
  return createGcpIitAttestor({
    keys: new JwksSource({ url: new URL(jwks.url), now: () => Date.now() }),
    audience: AUD,
    projectIds: new Set(['my-project']),
    allowReattestation: o.allow ?? false,
    now: () => Date.now(),
  });
}

const denied = (token: string, message: string) => refused(attestor(), Buffer.from(token), message);

describe('gcp_iit server half', () => {
  it('admits a Google-signed token for our audience: ID, selectors, trust on first use', async () => {
    const token = await signToken(google, gceClaims(AUD));
    const result = await attestor().attest(Buffer.from(token), noChallenge);
    const s = (value: string) => ({ type: GCP_IIT_TYPE, value });
    assert.deepEqual(result, {
      idSegments: ['my-project', '4470531224346736429'],
      selectors: [
        s('project:my-project'),
        s('zone:europe-west1-b'),
        s('instance_name:node-1'),
        s('instance_id:4470531224346736429'),
        s('service_account:123456789012-compute@developer.gserviceaccount.com'),
      ],
      canReattest: false,
      trustOnFirstUse: true,
    });
    const allowed = await attestor({ allow: true }).attest(Buffer.from(token), noChallenge);
    assert.equal(allowed.trustOnFirstUse, false);
  });

  it('refuses forged, expired, wrong-audience, wrong-project and format=standard tokens', async () => {
    await denied(
      await signToken(forger, gceClaims(AUD)),
      'gcp_iit: token signature does not verify',
    );
    await denied(
      await signToken(google, gceClaims(AUD), { iatOffsetSeconds: -7200 }),
      'gcp_iit: token has expired',
    );
    await denied(
      await signToken(google, gceClaims('other')),
      'gcp_iit: token audience is not "tessera-gcp-node-attestor"',
    );
    await denied(
      await signToken(google, gceClaims(AUD, { project: 'their-project' })),
      'gcp_iit: project their-project is not allowed',
    );
    const { google: _, ...standard } = gceClaims(AUD);
    await denied(
      await signToken(google, standard),
      'gcp_iit: token has no google.compute_engine claims (request it with format=full)',
    );
    await denied(
      await signToken(google, { ...gceClaims(AUD), iss: 'https://evil.example' }),
      'gcp_iit: token issuer "https://evil.example" is not trusted',
    );
    await denied('a.b', 'gcp_iit: token is not a compact JWS');
    await denied(
      await signToken(tokenSigner('unknown-kid'), gceClaims(AUD)),
      'gcp_iit: token key "unknown-kid" is not among the provider\'s keys',
    );
  });

  it('fetches the keys once for many tokens (an unknown kid refreshes at most every 30 s)', async () => {
    const before = jwks.hits;
    const a = attestor();
    for (let i = 0; i < 3; i++)
      await assert.rejects(
        a.attest(Buffer.from(await signToken(tokenSigner(`k${i}`), gceClaims(AUD))), noChallenge),
      );
    await a.attest(Buffer.from(await signToken(google, gceClaims(AUD))), noChallenge);
    assert.equal(jwks.hits - before, 1);
  });
});

describe('gcp_iit agent half', () => {
  it('asks the metadata server (Metadata-Flavor: Google) for a full token with our audience', async () => {
    const md = await gceMetadata((aud, format) => {
      assert.equal(format, 'full');
      return tokenFor.get(aud) ?? '';
    });
    const tokenFor = new Map([[AUD, await signToken(google, gceClaims(AUD))]]);
    try {
      assert.equal((await fetch(`${md.url}/computeMetadata/v1/instance/id`)).status, 403);
      const agent = gcpIitAgent(new URL(md.url), AUD);
      const result = await attestor().attest(await agent.payload(), noChallenge);
      assert.deepEqual(result.idSegments, ['my-project', '4470531224346736429']);
      assert.equal(
        md.requests.at(-1),
        `GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=${AUD}&format=full`,
      );
    } finally {
      await md.close();
    }
  });
});
