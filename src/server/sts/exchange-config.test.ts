// TokenExchange's config checks for federated pseudo-issuers (spiffe://<td>) beside OIDC issuers.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readJwksFiles } from '../compose/files.ts';
import { TokenExchange, type StsConfig } from './exchange.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-sts-config-'));
const jwksFile = path.join(dir, 'jwks.json');
const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
writeFileSync(
  jwksFile,
  JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k' }] }),
);

const build = (config: Partial<StsConfig>) =>
  new TokenExchange({
    config: { issuers: [], policies: [], max_ttl: 3_600_000, ...config },
    jwksFiles: readJwksFiles(config.issuers ?? []),
    trustDomain: 'example.org',
    tokenEndpoint: 'https://oidc.example.org/token',
    clock: { now: () => 0 },
    bundle: async () => null,
    minter: undefined as never,
    auditor: undefined as never,
    dpopProofs: undefined as never,
  });
const policy = (issuer: string) => ({
  name: 'p',
  issuer,
  condition: 'true',
  attribute_mapping: { subject: 'assertion.sub' },
  access_token: { audience: 'https://api.example.org', scopes: [] },
});

describe('TokenExchange config: federated pseudo-issuers', () => {
  it('accepts spiffe://<td> beside an https issuer, and policies naming it', () => {
    const x = build({
      issuers: [
        { issuer: 'https://issuer.example', jwks_file: jwksFile, audiences: ['a'] },
        { issuer: 'spiffe://partner.org', audiences: ['a'] },
      ],
      policies: [policy('spiffe://partner.org')],
    });
    assert.deepEqual(x.accessTokenClients(), ['p']);
  });

  const refusals: Array<[string, Partial<StsConfig>, RegExp]> = [
    [
      'a jwks_file on a pseudo-issuer',
      { issuers: [{ issuer: 'spiffe://partner.org', jwks_file: jwksFile, audiences: ['a'] }] },
      /sts\.issuers\[0\]\.jwks_file: not allowed for spiffe:\/\/partner\.org/,
    ],
    [
      'an https issuer without jwks_file',
      { issuers: [{ issuer: 'https://issuer.example', audiences: ['a'] }] },
      /sts\.issuers\[0\]\.jwks_file: required/,
    ],
    [
      'our own trust domain',
      { issuers: [{ issuer: 'spiffe://example.org', audiences: ['a'] }] },
      /our own trust domain/,
    ],
    [
      'a repeated pseudo-issuer',
      {
        issuers: [
          { issuer: 'spiffe://partner.org', audiences: ['a'] },
          { issuer: 'spiffe://partner.org', audiences: ['b'] },
        ],
      },
      /sts\.issuers\[1\]: issuer "spiffe:\/\/partner\.org" is repeated/,
    ],
    [
      'a policy for an unlisted trust domain',
      {
        issuers: [{ issuer: 'spiffe://partner.org', audiences: ['a'] }],
        policies: [policy('spiffe://other.org')],
      },
      /issuer "spiffe:\/\/other\.org" is not in sts\.issuers/,
    ],
  ];
  for (const [name, config, message] of refusals)
    it(`refuses ${name}`, () => assert.throws(() => build(config), message));
});
