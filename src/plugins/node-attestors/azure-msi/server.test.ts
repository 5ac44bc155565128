import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { azureImds } from '../../../../test/helpers/cloud-metadata.ts';
import {
  AZURE_SUBSCRIPTION,
  AZURE_TENANT,
  type JwksServer,
  type TokenSigner,
  azureClaims,
  serveJwks,
  signToken,
  tokenSigner,
} from '../../../../test/helpers/cloud-tokens.ts';
import { JwksSource } from '../cloud-jwt.ts';
import type { NodeAttestor } from '../node-attestor.ts';
import { noChallenge, refused } from '../testing/attestation.ts';
import { azureMsiAgent } from './agent.ts';
import { AZURE_MSI_TYPE, createAzureMsiAttestor, parseMirid } from './server.ts';

const RESOURCE = 'https://management.azure.com/';
const PRINCIPAL = '9c7b1e3d-4f5a-4b6c-8d7e-0f1a2b3c4d5e';
let entra: TokenSigner;
let jwks: JwksServer;

before(async () => {
  entra = tokenSigner();
  jwks = await serveJwks([entra]);
});
after(() => jwks.close());

function attestor(): NodeAttestor {
  return createAzureMsiAttestor({
    keys: new JwksSource({ url: new URL(jwks.url), now: () => Date.now() }),
    tenants: [{ tenantId: AZURE_TENANT, resource: RESOURCE }],
    allowReattestation: false,
    now: () => Date.now(),
  });
}

const denied = (token: string, message: string) => refused(attestor(), Buffer.from(token), message);

describe('azure_msi server half', () => {
  it('admits a token of an allowed tenant for its resource: ID, selectors from xms_mirid', async () => {
    const token = await signToken(entra, azureClaims(RESOURCE));
    const result = await attestor().attest(Buffer.from(token), noChallenge);
    const s = (value: string) => ({ type: AZURE_MSI_TYPE, value });
    assert.deepEqual(result, {
      idSegments: [AZURE_TENANT, PRINCIPAL],
      selectors: [
        s(`tenant:${AZURE_TENANT}`),
        s(`principal_id:${PRINCIPAL}`),
        s(`subscription:${AZURE_SUBSCRIPTION}`),
        s('resource_group:web-rg'),
        s('vm_name:vm-1'),
      ],
      canReattest: false,
      trustOnFirstUse: true,
    });
  });

  it('refuses another tenant, another audience, a forged or expired token, a bad xms_mirid', async () => {
    const other = '11111111-2222-3333-4444-555555555555';
    await denied(
      await signToken(entra, azureClaims(RESOURCE, { tenant: other })),
      `azure_msi: tenant "${other}" is not allowed`,
    );
    await denied(
      await signToken(entra, azureClaims('https://vault.azure.net')),
      'azure_msi: token audience is not "https://management.azure.com/"',
    );
    await denied(
      await signToken(tokenSigner(entra.kid), azureClaims(RESOURCE)),
      'azure_msi: token signature does not verify',
    );
    await denied(
      await signToken(entra, azureClaims(RESOURCE), { iatOffsetSeconds: -7200 }),
      'azure_msi: token has expired',
    );
    await denied(
      await signToken(entra, { ...azureClaims(RESOURCE), iss: 'https://sts.windows.net/other/' }),
      'azure_msi: token issuer "https://sts.windows.net/other/" is not trusted',
    );
    await denied(
      await signToken(entra, azureClaims(RESOURCE, { mirid: '/subscriptions/x' })),
      'azure_msi: token has no valid xms_mirid',
    );
  });

  it('reads a user-assigned identity without a VM name', () => {
    assert.deepEqual(
      parseMirid(
        `/subscriptions/${AZURE_SUBSCRIPTION.toUpperCase()}/resourceGroups/RG1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`,
      ),
      { subscription: AZURE_SUBSCRIPTION, resourceGroup: 'RG1', vmName: null },
    );
  });
});

describe('azure_msi agent half', () => {
  it('asks Azure IMDS (Metadata: true) for a token for the configured resource', async () => {
    const token = await signToken(entra, azureClaims(RESOURCE));
    const imds = await azureImds((resource) => (resource === RESOURCE ? token : 'x'));
    try {
      const bare = await fetch(
        `${imds.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x`,
      );
      assert.equal(bare.status, 400);
      const agent = azureMsiAgent({
        endpoint: new URL(imds.url),
        resource: RESOURCE,
        apiVersion: '2018-02-01',
      });
      const result = await attestor().attest(await agent.payload(), noChallenge);
      assert.deepEqual(result.idSegments, [AZURE_TENANT, PRINCIPAL]);
      assert.equal(
        imds.requests.at(-1),
        `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(RESOURCE)}`,
      );
    } finally {
      await imds.close();
    }
  });
});
