// Several servers sharing one PostgreSQL: entries reach every server's index through the change
// feed, join tokens are single use across servers, and each server's keys are in the shared bundle.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { adminClients, entry } from './helpers/admin.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { StandInAgent, bundlePem } from './helpers/stand-in-agent.ts';
import { verifyWithBundle } from './helpers/jwt.ts';

describe('two servers sharing one PostgreSQL', () => {
  let db: TempDatabase;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    db = await createTempDatabase();
    a = await startServer({ datastoreUrl: db.url });
    b = await startServer({ datastoreUrl: db.url });
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  const agentOn = async (s: ServerProcess) =>
    new StandInAgent({
      address: s.apiAddr,
      trustDomain: 'example.org',
      trustBundlePem: await bundlePem(s.adminSocket),
    });

  it('publishes both servers’ authorities in the one bundle', async () => {
    const bundle = (await adminClients(b.adminSocket).bundles.getBundle({})).bundle!;
    assert.ok(bundle.x509Authorities.length >= 2, 'one CA per server');
    assert.ok(bundle.jwtAuthorities.length >= 2, 'one JWT key per server');
    const jwt = await adminClients(a.adminSocket).svids.mintJWTSVID({
      spiffeId: 'spiffe://example.org/x',
      audience: ['aud'],
    });
    await verifyWithBundle(jwt.token, bundle, 'aud');
  });

  it('lets exactly one of two agents racing one join token on different servers win', async () => {
    const t = await adminClients(a.adminSocket).agents.createJoinToken({});
    const results = await Promise.allSettled([
      (await agentOn(a)).attest('join_token', Buffer.from(t.token)),
      (await agentOn(b)).attest('join_token', Buffer.from(t.token)),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  });

  it('serves an entry created on one server to an agent attested on the other', async () => {
    const t = await adminClients(a.adminSocket).agents.createJoinToken({});
    const agent = await agentOn(b);
    await agent.attest('join_token', Buffer.from(t.token));
    const created = await adminClients(a.adminSocket).entries.batchCreateEntry({
      entries: [entry('spiffe://example.org/shared', agent.identity!.spiffeId, ['unix:uid:7'])],
    });
    const id = created.results[0]!.entry!.id;
    let seen = false;
    for (let i = 0; i < 50 && !seen; i++) {
      seen = (await agent.syncApi().getAuthorizedEntries({})).entries.some((e) => e.id === id);
      if (!seen) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(seen, 'entry reached the other server within 5 s');
    // A ban on server A is enforced by server B at the agent's next call.
    await adminClients(a.adminSocket).agents.banAgent({ spiffeId: agent.identity!.spiffeId });
    const err = await agent
      .syncApi()
      .getAuthorizedEntries({})
      .then(
        () => null,
        (e: unknown) => ConnectError.from(e),
      );
    assert.equal(err?.code, Code.PermissionDenied);
  });
});
