// The black-box server suite, run against SQLite (server-sqlite.test.ts) and PostgreSQL
// (server-postgres.test.ts): a real `tessera server run` process, a stand-in agent over mTLS,
// admin calls over the local socket, OpenSSL and jose as independent verifiers.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { REFUSAL_REASON_KEY } from '../src/core/refusal.ts';
import { createCsr } from '../src/crypto/x509/csr-create.ts';
import { derToPem } from '../src/crypto/x509/pem.ts';
import {
  answerX509PopChallenge,
  x509PopPayload,
} from '../src/plugins/node-attestors/x509pop/agent.ts';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { verifyWithBundle } from './helpers/jwt.ts';
import { makeX509PopCerts, opensslText, opensslVerify } from './helpers/openssl.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { StandInAgent, bundlePem, newKey } from './helpers/stand-in-agent.ts';

const TD = 'example.org';

async function rejects(p: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    const ce = ConnectError.from(e);
    assert.equal(Code[ce.code], Code[code], `${ce.message}`);
    if (message) assert.match(ce.rawMessage, message);
    return ce;
  }
  assert.fail('expected the call to fail');
}

/** The reason code a refusal carries in its metadata (src/core/refusal.ts). */
function refusalReason(e: ConnectError): string | null {
  return e.metadata.get(REFUSAL_REASON_KEY);
}

export function serverSuite(
  name: string,
  datastore: () => Promise<{ url?: string; drop?: () => Promise<void> }>,
) {
  describe(`server black-box (${name})`, () => {
    let server: ServerProcess;
    let admin: AdminClients;
    let db: { url?: string; drop?: () => Promise<void> };
    let pop: ReturnType<typeof makeX509PopCerts>;

    const newAgent = async () =>
      new StandInAgent({
        address: server.apiAddr,
        trustDomain: TD,
        trustBundlePem: await bundlePem(server.adminSocket),
      });
    const joinTokenAgent = async () => {
      const t = await admin.agents.createJoinToken({});
      const agent = await newAgent();
      await agent.attest('join_token', Buffer.from(t.token));
      return agent;
    };
    const popAgent = async () => {
      const agent = await newAgent();
      const key = createPrivateKey(pop.keyPem);
      const der = new X509Certificate(pop.certPem).raw;
      await agent.attest('x509pop', x509PopPayload([der]), (nonce) =>
        answerX509PopChallenge(key, nonce),
      );
      return agent;
    };

    before(async () => {
      db = await datastore();
      const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-pop-'));
      pop = makeX509PopCerts(dir, 'node-1.example');
      server = await startServer({
        trustDomain: TD,
        ...(db.url ? { datastoreUrl: db.url } : {}),
        config: { node_attestors: { join_token: {}, x509pop: { ca_bundle_file: pop.caFile } } },
      });
      admin = adminClients(server.adminSocket);
    });

    after(async () => {
      await server?.stop();
      await db?.drop?.();
    });

    it('attests an agent with a join token and issues an agent SVID chained to the bundle', async () => {
      const t = await admin.agents.createJoinToken({});
      assert.match(
        t.agentSpiffeId,
        /^spiffe:\/\/example\.org\/spire\/agent\/join_token\/[0-9a-f]{32}$/,
      );
      const agent = await newAgent();
      const id = await agent.attest('join_token', Buffer.from(t.token));
      assert.equal(id.spiffeId, t.agentSpiffeId);
      assert.equal(opensslVerify(agent.trustBundlePem, id.certPem).ok, true);
      const shown = await admin.agents.getAgent({ spiffeId: id.spiffeId });
      assert.equal(shown.agent?.attestationType, 'join_token');
      assert.equal(shown.agent?.canReattest, false);
    });

    it('lets exactly one of two agents racing one join token win', async () => {
      const t = await admin.agents.createJoinToken({});
      const [a, b] = [await newAgent(), await newAgent()];
      const results = await Promise.allSettled([
        a.attest('join_token', Buffer.from(t.token)),
        b.attest('join_token', Buffer.from(t.token)),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      const ce = ConnectError.from(loser.reason);
      assert.equal(ce.code, Code.PermissionDenied);
      assert.equal(ce.rawMessage, 'join token does not exist, has expired or was already used');
    });

    it('mints only for authorized entries and audits the denial', async () => {
      const agent = await joinTokenAgent();
      const agentId = agent.identity!.spiffeId;
      const created = await admin.entries.batchCreateEntry({
        entries: [
          entry('spiffe://example.org/web', agentId, ['unix:uid:1000'], {
            dnsNames: ['web.example.org'],
          }),
          entry('spiffe://example.org/web/child', 'spiffe://example.org/web', ['unix:uid:1001']),
          entry(
            'spiffe://example.org/other',
            'spiffe://example.org/spire/agent/join_token/someone-else',
            ['unix:uid:1000'],
          ),
        ],
      });
      const [web, child, other] = created.results.map((r) => r.entry!);
      const authorized = await waitForEntries(agent, 2);
      assert.deepEqual(authorized.sort(), [web!.id, child!.id].sort());

      const key = newKey();
      const res = await agent.svidApi().batchNewX509SVID({
        params: [
          { entryId: web!.id, csr: createCsr(key) },
          { entryId: other!.id, csr: createCsr(newKey()) },
        ],
      });
      assert.equal(res.results[0]?.status?.code, '');
      assert.equal(res.results[1]?.status?.code, 'permission_denied');
      const certPem = res.results[0]!.svidChain.map((d) => derToPem(d)).join('');
      assert.equal(opensslVerify(agent.trustBundlePem, certPem).ok, true, 'openssl verify');
      const leaf = new X509Certificate(res.results[0]!.svidChain[0]!);
      assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/web, DNS:web.example.org');
      assert.ok(leaf.checkPrivateKey(key));

      const jwt = await agent.svidApi().newJWTSVID({ entryId: child!.id, audience: ['db'] });
      const bundle = (await admin.bundles.getBundle({})).bundle;
      const verified = await verifyWithBundle(jwt.token, bundle, 'db');
      assert.equal(verified.payload.sub, 'spiffe://example.org/web/child');
      await rejects(
        agent.svidApi().newJWTSVID({ entryId: other!.id, audience: ['db'] }),
        Code.PermissionDenied,
      );

      // The batch call: per-item authorization and results, in request order, each audited.
      const batch = await agent.svidApi().batchNewJWTSVID({
        params: [
          { entryId: child!.id, audience: ['db', 'cache'] },
          { entryId: other!.id, audience: ['db'] },
          { entryId: web!.id, audience: [] },
        ],
      });
      assert.deepEqual(
        batch.results.map((r) => [r.entryId, r.status?.code]),
        [
          [child!.id, ''],
          [other!.id, 'permission_denied'],
          [web!.id, 'invalid_argument'],
        ],
      );
      assert.equal(batch.results[1]!.token, '');
      const batched = await verifyWithBundle(batch.results[0]!.token, bundle, 'cache');
      assert.equal(batched.payload.sub, 'spiffe://example.org/web/child');
      assert.equal(batch.results[0]!.spiffeId, 'spiffe://example.org/web/child');
      await rejects(agent.svidApi().batchNewJWTSVID({ params: [] }), Code.InvalidArgument);
      const jwtAudits = await admin.audit.listAuditRecords({ action: 'svid.jwt.new', limit: 1000 });
      assert.ok(
        jwtAudits.records.some(
          (r) => r.outcome === 'success' && r.target === 'spiffe://example.org/web/child',
        ),
      );
      assert.ok(jwtAudits.records.some((r) => r.outcome === 'denied' && r.actor === agentId));

      const denials = await admin.audit.listAuditRecords({ action: 'svid.x509.new', limit: 1000 });
      assert.ok(denials.records.some((r) => r.outcome === 'denied' && r.actor === agentId));
    });

    it('delivers entries through node alias entries matched by x509pop selectors', async () => {
      const agent = await popAgent();
      const node = (await admin.agents.getAgent({ spiffeId: agent.identity!.spiffeId })).agent!;
      assert.ok(
        node.selectors.some((s) => s.type === 'x509pop' && s.value === 'subject:cn:node-1.example'),
      );
      const alias = 'spiffe://example.org/node-group/pop';
      const created = await admin.entries.batchCreateEntry({
        entries: [
          entry(alias, 'spiffe://example.org/spire/server', ['x509pop:subject:cn:node-1.example']),
          entry('spiffe://example.org/via-alias', alias, ['unix:uid:2000']),
          entry('spiffe://example.org/other-alias', 'spiffe://example.org/spire/server', [
            'x509pop:subject:cn:node-2.example',
          ]),
        ],
      });
      const viaAlias = created.results[1]!.entry!.id;
      const ids = await waitForEntries(agent, 1);
      assert.deepEqual(ids, [viaAlias]);
    });

    it('re-attests an x509pop agent after eviction, but never a banned one', async () => {
      const agent = await popAgent();
      const id = agent.identity!.spiffeId;
      await admin.agents.evictAgent({ spiffeId: id });
      const unknown = await rejects(
        agent.syncApi().getAuthorizedEntries({}),
        Code.PermissionDenied,
        /not attested/,
      );
      assert.equal(refusalReason(unknown), 'agent_unknown');
      const again = await popAgent();
      assert.equal(again.identity!.spiffeId, id);
      await admin.agents.banAgent({ spiffeId: id });
      const banned = await rejects(
        again.syncApi().getAuthorizedEntries({}),
        Code.PermissionDenied,
        /is banned/,
      );
      assert.equal(refusalReason(banned), 'agent_banned');
      const reattest = await rejects(popAgent(), Code.PermissionDenied, /is banned/);
      assert.equal(refusalReason(reattest), 'agent_banned');
      await admin.agents.evictAgent({ spiffeId: id });
    });

    it('renews an agent SVID; the old one stops working once the new one is used', async () => {
      const agent = await joinTokenAgent();
      const old = agent.identity!;
      await agent.renew();
      await agent.syncApi().getAuthorizedEntries({});
      const stale = new StandInAgent({
        address: server.apiAddr,
        trustDomain: TD,
        trustBundlePem: agent.trustBundlePem,
      });
      stale.identity = old;
      const superseded = await rejects(
        stale.syncApi().getAuthorizedEntries({}),
        Code.PermissionDenied,
        /no longer current/,
      );
      assert.equal(refusalReason(superseded), 'agent_svid_superseded');
    });

    it('refuses a banned agent at its next call, and the used join token cannot bring it back', async () => {
      const t = await admin.agents.createJoinToken({});
      const agent = await newAgent();
      await agent.attest('join_token', Buffer.from(t.token));
      await agent.syncApi().getAuthorizedEntries({});
      await admin.agents.banAgent({ spiffeId: agent.identity!.spiffeId });
      await rejects(agent.syncApi().getAuthorizedEntries({}), Code.PermissionDenied, /is banned/);
      await rejects(agent.renew(), Code.PermissionDenied, /is banned/);
      const spent = await rejects(
        (await newAgent()).attest('join_token', Buffer.from(t.token)),
        Code.PermissionDenied,
      );
      assert.equal(refusalReason(spent), 'join_token_rejected');
      const banned = await admin.agents.listAgents({ byBanned: 'true' });
      assert.ok(banned.agents.some((a) => a.spiffeId === agent.identity!.spiffeId));
    });

    it('denies by default: anonymous and workload callers cannot reach admin or agent methods', async () => {
      const agent = await newAgent();
      await rejects(
        agent.anonymous().listAgents({}),
        Code.PermissionDenied,
        /anonymous callers may not call/,
      );
      // A workload SVID (no admin entry) over mTLS.
      const key = newKey();
      const minted = await admin.svids.mintX509SVID({
        spiffeId: 'spiffe://example.org/workload',
        csr: createCsr(key),
      });
      const workload = new StandInAgent({
        address: server.apiAddr,
        trustDomain: TD,
        trustBundlePem: agent.trustBundlePem,
      });
      workload.identity = {
        spiffeId: 'spiffe://example.org/workload',
        key,
        certPem: minted.svidChain.map((d) => derToPem(d)).join(''),
        serial: '',
      };
      await rejects(
        workload.agentApi().listAgents({}),
        Code.PermissionDenied,
        /workload callers may not call/,
      );
      await rejects(workload.syncApi().getAuthorizedEntries({}), Code.PermissionDenied);
      // An admin entry makes the same kind of SVID an admin caller.
      await admin.entries.batchCreateEntry({
        entries: [
          entry(
            'spiffe://example.org/ops',
            'spiffe://example.org/spire/server',
            ['tessera:admin'],
            { admin: true },
          ),
        ],
      });
      const opsKey = newKey();
      const ops = await admin.svids.mintX509SVID({
        spiffeId: 'spiffe://example.org/ops',
        csr: createCsr(opsKey),
      });
      const opsCaller = new StandInAgent({
        address: server.apiAddr,
        trustDomain: TD,
        trustBundlePem: agent.trustBundlePem,
      });
      opsCaller.identity = {
        spiffeId: 'spiffe://example.org/ops',
        key: opsKey,
        certPem: ops.svidChain.map((d) => derToPem(d)).join(''),
        serial: '',
      };
      let listed = false;
      for (let i = 0; i < 40 && !listed; i++) {
        try {
          await opsCaller.agentApi().listAgents({});
          listed = true;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.ok(listed, 'admin SVID may list agents');
    });

    it('mints an X.509-SVID that OpenSSL verifies against the bundle, with the X509-SVID template', async () => {
      const key = newKey();
      const res = await admin.svids.mintX509SVID({
        spiffeId: 'spiffe://example.org/api',
        csr: createCsr(key),
        ttl: 600,
        dnsNames: ['api.example.org'],
      });
      const certPem = res.svidChain.map((d) => derToPem(d)).join('');
      const v = opensslVerify(await bundlePem(server.adminSocket), certPem);
      assert.equal(v.ok, true, v.output);
      const text = opensslText(certPem);
      assert.match(
        text,
        /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment, Key Agreement/,
      );
      assert.match(text, /CA:FALSE/);
      assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(text, /URI:spiffe:\/\/example\.org\/api/);
      assert.match(text, /X509v3 Subject Key Identifier/);
      assert.match(text, /X509v3 Authority Key Identifier/);
      const leaf = new X509Certificate(res.svidChain[0]!);
      const life = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
      assert.ok(life >= 600_000 && life <= 611_000, `lifetime ${life}`);
    });

    it('rejects bad input with a clear error, stores nothing, and keeps serving', async () => {
      const before = await admin.entries.listEntries({ pageSize: 1000 });
      const bad = await admin.entries.batchCreateEntry({
        entries: [
          entry('spiffe://Example.org/x', 'spiffe://example.org/p', ['unix:uid:1']),
          entry('spiffe://example.org/x', 'spiffe://example.org/p', ['nocolon']),
          entry('spiffe://example.org/x', 'spiffe://example.org/p', ['unix:uid:1'], {
            x509SvidTtl: -5,
          }),
          entry('spiffe://example.org/x/../y', 'spiffe://example.org/p', ['unix:uid:1']),
        ],
      });
      assert.deepEqual(
        bad.results.map((r) => [r.status?.code, r.status?.message]),
        [
          [
            'invalid_argument',
            'spiffe_id: invalid SPIFFE ID "spiffe://Example.org/x": the trust domain must be lowercase',
          ],
          ['invalid_argument', 'selectors: invalid selector "nocolon:": empty value'],
          [
            'invalid_argument',
            'x509_svid_ttl: must be a whole number of seconds between 0 and 315360000',
          ],
          [
            'invalid_argument',
            'spiffe_id: invalid SPIFFE ID "spiffe://example.org/x/../y": the path has a ".." segment',
          ],
        ],
      );
      const afterList = await admin.entries.listEntries({ pageSize: 1000 });
      assert.equal(afterList.entries.length, before.entries.length);

      await rejects(
        admin.svids.mintX509SVID({
          spiffeId: 'spiffe://example.org/x',
          csr: Buffer.from('not a csr'),
        }),
        Code.InvalidArgument,
        /CSR/i,
      );
      const csr = Buffer.from(createCsr(newKey()));
      csr[csr.length - 5] = csr[csr.length - 5]! ^ 0xff;
      await rejects(
        admin.svids.mintX509SVID({ spiffeId: 'spiffe://example.org/x', csr }),
        Code.InvalidArgument,
        /signature/i,
      );
      await rejects(
        admin.svids.mintJWTSVID({ spiffeId: 'spiffe://example.org/x', audience: [] }),
        Code.InvalidArgument,
        /audience/,
      );
      await rejects(
        admin.entries.batchCreateEntry({
          entries: [
            entry('spiffe://example.org/big', 'spiffe://example.org/p', ['unix:uid:1'], {
              hint: 'x'.repeat(5 * 1024 * 1024),
            }),
          ],
        }),
        Code.ResourceExhausted,
      );
      const t = await admin.agents.createJoinToken({});
      await rejects(
        (await newAgent()).attest(
          'join_token',
          Buffer.from(t.token),
          undefined,
          Buffer.from('garbage'),
        ),
        Code.InvalidArgument,
      );
      // The token was not burnt by the bad CSR.
      await (await newAgent()).attest('join_token', Buffer.from(t.token));
      const status = await admin.server.getStatus({});
      assert.equal(status.ready, true);
    });

    it('streams authorized-entry deltas to a syncing agent', async () => {
      const agent = await joinTokenAgent();
      const agentId = agent.identity!.spiffeId;
      const ac = new AbortController();
      const stream = agent
        .syncApi()
        .syncAuthorizedEntries({}, { signal: ac.signal })
        [Symbol.asyncIterator]();
      const first = (await stream.next()).value!;
      assert.equal(first.initial, true);
      assert.deepEqual(first.upserted, []);
      assert.ok(first.bundle && first.bundle.x509Authorities.length > 0);
      const created = await admin.entries.batchCreateEntry({
        entries: [entry('spiffe://example.org/synced', agentId, ['unix:uid:5'])],
      });
      const id = created.results[0]!.entry!.id;
      const added = (await stream.next()).value!;
      assert.deepEqual(
        added.upserted.map((e: { id: string }) => e.id),
        [id],
      );
      await admin.entries.batchUpdateEntry({
        updates: [{ entry: { id, hint: 'db' }, mask: ['hint'] }],
      });
      const changed = (await stream.next()).value!;
      assert.equal(changed.upserted[0]?.hint, 'db');
      assert.equal(changed.upserted[0]?.revision, 2n);
      await admin.entries.batchDeleteEntry({ ids: [id] });
      const removed = (await stream.next()).value!;
      assert.deepEqual(removed.removed, [id]);
      ac.abort();
    });

    it("ends a banned agent's open sync stream with PermissionDenied", async () => {
      const agent = await joinTokenAgent();
      const stream = agent.syncApi().syncAuthorizedEntries({})[Symbol.asyncIterator]();
      assert.equal((await stream.next()).value!.initial, true);
      await admin.agents.banAgent({ spiffeId: agent.identity!.spiffeId });
      // The ban reaches the stream through the change feed (polled every 250 ms).
      const ended = await Promise.race([
        stream.next().then(
          () => 'another message',
          (e: unknown) => e,
        ),
        new Promise((r) => setTimeout(() => r('still open after 5 s'), 5000)),
      ]);
      assert.ok(ended instanceof ConnectError, String(ended));
      assert.equal(ended.code, Code.PermissionDenied);
      assert.match(ended.message, /is banned/);
    });

    it('exposes health, readiness and Prometheus metrics, and a 0600 admin socket', async () => {
      const { statSync } = await import('node:fs');
      assert.equal(statSync(server.adminSocket).mode & 0o777, 0o600);
      assert.equal((await fetch(`http://${server.healthAddr}/healthz`)).status, 200);
      assert.equal((await fetch(`http://${server.healthAddr}/readyz`)).status, 200);
      const metrics = await (await fetch(`http://${server.healthAddr}/metrics`)).text();
      assert.match(
        metrics,
        /tessera_rpc_requests_total\{method="\/tessera.v1.AgentService\/CreateJoinToken",code="ok"\} \d+/,
      );
      assert.match(metrics, /tessera_rpc_duration_seconds_bucket/);
      assert.match(metrics, /tessera_svids_issued_total\{kind="x509"\} \d+/);
      assert.match(metrics, /tessera_authority_events_total\{kind="x509",event="activate"\} \d+/);
      const bundle = (await admin.bundles.getBundle({})).bundle!;
      assert.equal(bundle.refreshHint, 8640n, 'CA life 24h / 10');
    });

    it('keeps an unbroken, verifiable audit chain', async () => {
      const v = await admin.audit.verifyAuditLog({});
      assert.equal(v.ok, true, v.reason);
      assert.ok(v.count > 10n);
      const recent = await admin.audit.listAuditRecords({ tail: true, limit: 50 });
      assert.ok(recent.records.every((r) => !JSON.stringify(r.details).includes('token":"')));
    });
  });
}

/** Waits until the agent's authorized entries reach `n` (index sync is asynchronous). */
async function waitForEntries(agent: StandInAgent, n: number): Promise<string[]> {
  let ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    ids = (await agent.syncApi().getAuthorizedEntries({})).entries.map((e) => e.id);
    if (ids.length >= n) return ids;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ids;
}
