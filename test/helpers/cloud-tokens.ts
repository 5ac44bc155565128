// Test stand-ins for Google's and Microsoft Entra's token signers: an RSA key served as a JWKS on
// 127.0.0.1, and tokens shaped like a GCE instance identity token (format=full) and an Azure
// IMDS managed-identity access token, signed with jose.
import { type KeyObject, generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import { SignJWT, exportJWK } from 'jose';

export interface TokenSigner {
  readonly kid: string;
  readonly key: KeyObject;
  readonly publicKey: KeyObject;
}

export function tokenSigner(kid: string = randomUUID()): TokenSigner {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, key: privateKey, publicKey };
}

export interface JwksServer {
  readonly url: string;
  hits: number;
  close(): Promise<void>;
}

export async function serveJwks(signers: readonly TokenSigner[]): Promise<JwksServer> {
  const keys = await Promise.all(
    signers.map(async (s) => ({
      ...(await exportJWK(s.publicKey)),
      kid: s.kid,
      alg: 'RS256',
      use: 'sig',
    })),
  );
  const body = JSON.stringify({ keys });
  const out = { url: '', hits: 0, close: async () => {} };
  const server = http.createServer((_req, res) => {
    out.hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  out.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/oauth2/v3/certs`;
  out.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return out;
}

export async function signToken(
  s: TokenSigner,
  claims: Record<string, unknown>,
  o: { ttlSeconds?: number; iatOffsetSeconds?: number } = {},
): Promise<string> {
  const iat = Math.floor(Date.now() / 1000) + (o.iatOffsetSeconds ?? 0);
  return new SignJWT({ iat, exp: iat + (o.ttlSeconds ?? 3600), ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: s.kid, typ: 'JWT' })
    .sign(s.key);
}

/** Claims of a GCE instance identity token requested with format=full. */
export function gceClaims(
  audience: string,
  o: { project?: string; instanceId?: string; zone?: string; name?: string } = {},
): Record<string, unknown> {
  return {
    iss: 'https://accounts.google.com',
    aud: audience,
    azp: '117615537152463419337',
    sub: '117615537152463419337',
    email: '123456789012-compute@developer.gserviceaccount.com',
    email_verified: true,
    google: {
      compute_engine: {
        instance_creation_timestamp: 1700000000,
        instance_id: o.instanceId ?? '4470531224346736429',
        instance_name: o.name ?? 'node-1',
        project_id: o.project ?? 'my-project',
        project_number: 123456789012,
        zone: o.zone ?? 'europe-west1-b',
      },
    },
  };
}

export const AZURE_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const AZURE_SUBSCRIPTION = 'c0a4ffe3-2b1b-4c0e-9d2c-5a5b8c1e2f3a';

/** Claims of a v1 access token Azure IMDS issues for a VM's system-assigned identity. */
export function azureClaims(
  resource: string,
  o: { tenant?: string; principal?: string; vm?: string; mirid?: string } = {},
): Record<string, unknown> {
  const tenant = o.tenant ?? AZURE_TENANT;
  return {
    aud: resource,
    iss: `https://sts.windows.net/${tenant}/`,
    nbf: Math.floor(Date.now() / 1000) - 5,
    aio: 'E2ZgYJg=',
    appid: '2b0c1b2a-5b4e-4f0e-8a41-0f0b9a1c2d3e',
    appidacr: '2',
    idp: `https://sts.windows.net/${tenant}/`,
    idtyp: 'app',
    oid: o.principal ?? '9c7b1e3d-4f5a-4b6c-8d7e-0f1a2b3c4d5e',
    rh: '0.AAAA.',
    sub: o.principal ?? '9c7b1e3d-4f5a-4b6c-8d7e-0f1a2b3c4d5e',
    tid: tenant,
    uti: 'abcDEF123',
    ver: '1.0',
    xms_mirid:
      o.mirid ??
      `/subscriptions/${AZURE_SUBSCRIPTION}/resourcegroups/web-rg/providers/Microsoft.Compute/virtualMachines/${o.vm ?? 'vm-1'}`,
    xms_tcdt: 1600000000,
  };
}
