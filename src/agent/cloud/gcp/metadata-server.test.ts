import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudContext, CloudRequest } from '../cloud-endpoint.ts';
import { gceMetadataEndpoint } from './metadata-server.ts';

const endpoint = gceMetadataEndpoint({
  serverWorkload: 'gcs',
  projectId: 'orders-prod',
  projectNumber: '123456789',
  email: 'orders@orders-prod.iam.gserviceaccount.com',
});
const logged: string[] = [];
/** Paths that reach no credential: the context must not be used. */
const ctx: CloudContext = {
  credentials: undefined as never,
  identities: undefined as never,
  log: { info: () => {}, debug: () => {}, warn: (_f, m) => void logged.push(m) },
};

function request(
  target: string,
  headers: Record<string, string> = { 'metadata-flavor': 'Google' },
): CloudRequest {
  const q = target.indexOf('?');
  return {
    method: 'GET',
    path: q < 0 ? target : target.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
    headers,
    body: '',
    caller: () => Promise.reject(new Error('not attested in this test')),
    processKey: () => Promise.reject(new Error('not attested in this test')),
    signal: new AbortController().signal,
  };
}

describe('GCE metadata server', () => {
  it('requires Metadata-Flavor: Google and sends it on every answer', async () => {
    for (const headers of [
      {},
      { 'metadata-flavor': 'google' },
      { 'metadata-flavor': 'Google, Google' },
    ]) {
      const r = await endpoint.handle(
        request('/computeMetadata/v1/project/project-id', headers),
        ctx,
      );
      assert.equal(r.status, 403);
      assert.equal(r.headers?.['metadata-flavor'], 'Google');
      assert.match(r.body, /Missing Metadata-Flavor:Google header/);
    }
  });

  it('refuses requests relayed by a proxy, and says so in the log', async () => {
    const r = await endpoint.handle(
      request('/computeMetadata/v1/instance', {
        'metadata-flavor': 'Google',
        'x-forwarded-for': '10.0.0.1',
      }),
      ctx,
    );
    assert.equal(r.status, 403);
    assert.ok(logged.includes('refused a proxied metadata request'));
  });

  it('answers the keys and listings the SDKs read', async () => {
    const get = async (p: string) => {
      const r = await endpoint.handle(request(p), ctx);
      assert.equal(r.headers?.['metadata-flavor'], 'Google');
      return r;
    };
    assert.equal((await get('/computeMetadata/v1/instance')).status, 200);
    assert.equal((await get('/computeMetadata/v1/project/project-id')).body, 'orders-prod');
    assert.equal((await get('/computeMetadata/v1/project/numeric-project-id')).body, '123456789');
    assert.equal(
      (await get('/computeMetadata/v1/universe/universe-domain')).body,
      'googleapis.com',
    );
    assert.equal(
      (await get('/computeMetadata/v1/instance/service-accounts/default/email')).body,
      'orders@orders-prod.iam.gserviceaccount.com',
    );
    assert.equal(
      (await get('/computeMetadata/v1/instance/service-accounts/')).body,
      'default/\norders@orders-prod.iam.gserviceaccount.com/\n',
    );
    assert.deepEqual(
      JSON.parse(
        (await get('/computeMetadata/v1/instance/service-accounts/default/?recursive=true')).body,
      ),
      {
        aliases: ['default'],
        email: 'orders@orders-prod.iam.gserviceaccount.com',
      },
    );
    assert.equal((await get('/computeMetadata/v1/instance/attributes/')).status, 404);
    assert.equal(
      (await get('/computeMetadata/v1/instance/service-accounts/Not_A_Name/token')).status,
      404,
    );
  });

  it('refuses bad identity-token parameters before attesting', async () => {
    const id = '/computeMetadata/v1/instance/service-accounts/default/identity';
    assert.equal((await endpoint.handle(request(id), ctx)).status, 400);
    assert.equal((await endpoint.handle(request(`${id}?audience=a&format=xml`), ctx)).status, 400);
    assert.equal(
      (await endpoint.handle(request(`${id}?audience=${'a'.repeat(1025)}`), ctx)).status,
      400,
    );
  });

  it('without a default server workload, the one the caller is granted', async () => {
    const bare = gceMetadataEndpoint({
      serverWorkload: '',
      projectId: '',
      projectNumber: '',
      email: '',
      now: () => 1_000_000,
    });
    let granted: string[] = [];
    const asked: string[] = [];
    const caller = { process: { pid: 1, uid: 1000 } } as never;
    const withCaller = (p: string): CloudRequest => ({ ...request(p), caller: async () => caller });
    const live: CloudContext = {
      ...ctx,
      credentials: {
        granted: async (_c: unknown, protocol: string) => {
          assert.equal(protocol, 'gcp');
          return granted;
        },
        get: async (_c: unknown, ask: { server: string }) => {
          asked.push(ask.server);
          return {
            credential: {
              spiffeId: 'spiffe://example.org/web',
              credential: { value: { kind: 'token', token: 'ya29.x' }, expiresAt: 1_060_000 },
            },
          };
        },
      } as never,
    };
    const token = '/computeMetadata/v1/instance/service-accounts/default/token';
    let r = await bare.handle(withCaller(token), live);
    assert.equal(r.status, 404);
    assert.match(
      r.body,
      /granted no server workload of protocol gcp .*cloud\.gcp\.server_workload/,
    );
    granted = ['gcs', 'bq'];
    r = await bare.handle(withCaller(token), live);
    assert.equal(r.status, 400);
    assert.match(r.body, /several server workloads of protocol gcp \(gcs, bq\)/);
    granted = ['gcs'];
    r = await bare.handle(withCaller(token), live);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), {
      access_token: 'ya29.x',
      expires_in: 60,
      token_type: 'Bearer',
    });
    assert.deepEqual(asked, ['gcs']);
    assert.equal(
      (await bare.handle(request('/computeMetadata/v1/project/project-id'), ctx)).status,
      404,
    );
  });
});
