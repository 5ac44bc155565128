// Black-box: several servers on one PostgreSQL. A server's first keys are in every server's
// bundle before it signs anything with them (published through the datastore, announced with
// NOTIFY, activated only after the publish delay).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminClients } from './helpers/admin.ts';
import { verifyWithBundle } from './helpers/jwt.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

describe('a new server on a shared PostgreSQL', () => {
  let db: TempDatabase;
  let a: ServerProcess;
  let b: ServerProcess | undefined;

  before(async () => {
    db = await createTempDatabase();
    a = await startServer({ datastoreUrl: db.url });
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  it('a JWT-SVID minted on B as soon as B is ready validates against A’s bundle', async () => {
    b = await startServer({ datastoreUrl: db.url });
    const jwt = await adminClients(b.adminSocket).svids.mintJWTSVID({
      spiffeId: 'spiffe://example.org/fresh',
      audience: ['aud'],
    });
    const bundleOfA = (await adminClients(a.adminSocket).bundles.getBundle({})).bundle!;
    await verifyWithBundle(jwt.token, bundleOfA, 'aud');
    const x509OfA = bundleOfA.x509Authorities.length;
    assert.ok(x509OfA >= 2, `A's bundle holds both servers' CAs (${x509OfA})`);
  });
});
