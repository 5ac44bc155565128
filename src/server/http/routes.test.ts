// Every route the plain-HTTP listeners register has a row in the route table (which says who may
// call it), and every row is registered — as the API's authz table is checked against its methods.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { startHealthServer } from './health-server.ts';
import { startPublicServer, type PublicServerOptions } from './public-server.ts';
import { httpRoutes, routesOf } from './routes.ts';

const unused = () => {
  throw new Error('not called');
};
const base: PublicServerOptions = {
  host: '127.0.0.1',
  port: 0,
  issuer: 'http://127.0.0.1/tenant',
  bundle: unused,
};
const sts: Partial<PublicServerOptions> = {
  tokenExchange: { handle: unused } as unknown as PublicServerOptions['tokenExchange'],
  introspection: { introspect: unused, revoke: unused },
};

/** The (method, path) pairs registered, HEAD folded into the GET it answers. */
async function registeredOn(o: PublicServerOptions): Promise<string[]> {
  const server = await startPublicServer(o);
  try {
    const all = server.registered.map((r) => `${r.method} ${r.url}`);
    return all
      .filter((r) => !(r.startsWith('HEAD ') && all.includes(r.replace(/^HEAD /, 'GET '))))
      .sort();
  } finally {
    await server.close();
  }
}

const rows = (filter: (r: (typeof httpRoutes)[number]) => boolean) =>
  routesOf('public')
    .filter((r) => filter(r as (typeof httpRoutes)[number]))
    .map((r) => `${r.method} /tenant${r.path}`)
    .sort();

describe('http route table', () => {
  it('declares every route once, with who may call it', () => {
    const keys = httpRoutes.map((r) => `${r.listener} ${r.method} ${r.path}`);
    assert.equal(new Set(keys).size, keys.length);
    assert.equal(new Set(httpRoutes.map((r) => r.id)).size, httpRoutes.length);
    // Unauthenticated is a decision recorded here, not a default.
    assert.deepEqual(
      httpRoutes.filter((r) => r.access === 'public').map((r) => r.id),
      ['discovery', 'jwks', 'bundle', 'healthz', 'readyz', 'metrics'],
    );
  });

  it('the public listener registers exactly its rows (with the token exchange on)', async () => {
    assert.deepEqual(
      await registeredOn({ ...base, ...sts }),
      rows(() => true),
    );
  });

  it('without the token exchange, exactly the rows not marked sts', async () => {
    assert.deepEqual(
      await registeredOn(base),
      rows((r) => !('sts' in r)),
    );
  });

  it('the health listener registers its rows', async () => {
    const app = await startHealthServer('127.0.0.1', 0, {
      registry: new Registry(),
      checkReady: async () => {},
    });
    try {
      for (const r of routesOf('health'))
        assert.ok(app.hasRoute({ method: r.method, url: r.path }), `${r.method} ${r.path}`);
      const res = await app.inject({ method: 'GET', url: '/nope' });
      assert.equal(res.statusCode, 404);
    } finally {
      await app.close();
    }
  });
});
