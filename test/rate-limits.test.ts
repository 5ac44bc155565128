// Black-box: the per-address rate limits of the mTLS API (as SPIRE has them): node attestation
// and SVID signing (counted per item of a batch) are refused with ResourceExhausted before any
// work — no attestation, no audit record — and counted in a metric.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { createCsr } from '../src/crypto/x509/csr-create.ts';
import { adminClients, type AdminClients } from './helpers/admin.ts';
import { makeTlsFiles } from './helpers/https.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { StandInAgent, bundlePem, newKey } from './helpers/stand-in-agent.ts';

describe('API rate limits per client address', () => {
  let server: ServerProcess;
  let admin: AdminClients;

  before(async () => {
    server = await startServer({
      config: {
        // Slow refills, so that nothing comes back during the test.
        rate_limit: {
          attestation_per_second: 0.01,
          attestation_burst: 2,
          signing_per_second: 0.01,
          signing_burst: 3,
        },
      },
    });
    admin = adminClients(server.adminSocket);
  });
  after(async () => {
    await server?.stop();
  });

  const attest = async () => {
    const t = await admin.agents.createJoinToken({});
    const agent = new StandInAgent({
      address: server.apiAddr,
      trustDomain: server.trustDomain,
      trustBundlePem: await bundlePem(server.adminSocket),
    });
    await agent.attest('join_token', Buffer.from(t.token));
    return agent;
  };
  const attestRecords = async () =>
    (await admin.audit.listAuditRecords({ action: 'agent.attest', limit: 100 })).records.length;
  const exhausted = (pattern: RegExp) => (e: unknown) => {
    const ce = ConnectError.from(e);
    assert.equal(ce.code, Code.ResourceExhausted, ce.message);
    assert.match(ce.message, pattern);
    return true;
  };

  let agent: StandInAgent;

  it('refuses attestation beyond the burst, before attesting or auditing', async () => {
    agent = await attest();
    await attest();
    const before = await attestRecords();
    await assert.rejects(attest(), exhausted(/attestation rate limit exceeded for 127\.0\.0\.1/));
    assert.equal(await attestRecords(), before, 'the refused attempt left no audit record');
    // Another kind of call from the same address is not affected.
    await agent.renew();
  });

  it('counts every item of a signing batch, and refuses beyond the burst', async () => {
    // Three items (for entries that do not exist: refused one by one by the handler, yet signing
    // budget spent, since the limit is checked before any work).
    const params = [1, 2, 3].map((i) => ({ entryId: `missing-${i}`, csr: createCsr(newKey()) }));
    const res = await agent.svidApi().batchNewX509SVID({ params });
    assert.equal(res.results.length, 3);
    await assert.rejects(
      agent.svidApi().newJWTSVID({ entryId: 'missing-4', audience: ['db'] }),
      exhausted(/signing rate limit exceeded/),
    );
    const metrics = await (await fetch(`http://${server.healthAddr}/metrics`)).text();
    assert.match(metrics, /^tessera_api_rate_limited_total\{kind="attestation"\} 1$/m);
    assert.match(metrics, /^tessera_api_rate_limited_total\{kind="signing"\} 1$/m);
  });

  it('never limits the local admin socket', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await admin.svids.mintJWTSVID({
        spiffeId: 'spiffe://example.org/admin-minted',
        audience: ['db'],
      });
      assert.ok(r.token);
    }
  });
});

describe('an agent starting while attestation is rate-limited', () => {
  let server: ServerProcess;
  let agent: AgentProcess | undefined;
  let https: Server | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-ratelimit-'));

  before(async () => {
    // One attestation per 5 s from one address: another node keeps the bucket empty until the
    // agent has been refused, so the test holds however slowly the agent starts.
    server = await startServer({
      config: { rate_limit: { attestation_per_second: 0.2, attestation_burst: 1 } },
    });
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
    https?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits the limit out with backoff instead of failing its start', async () => {
    const admin = adminClients(server.adminSocket);
    const pem = await bundlePem(server.adminSocket);
    // Another node from the same address: takes every token the bucket gets.
    let otherRefused = 0;
    let token = (await admin.agents.createJoinToken({})).token;
    const takeToken = async (): Promise<boolean> => {
      const other = new StandInAgent({
        address: server.apiAddr,
        trustDomain: server.trustDomain,
        trustBundlePem: pem,
      });
      try {
        await other.attest('join_token', Buffer.from(token));
      } catch (e) {
        if (ConnectError.from(e).code !== Code.ResourceExhausted) throw e;
        otherRefused++; // the join token was not spent: the limit comes before any work
        return false;
      }
      token = (await admin.agents.createJoinToken({})).token;
      return true;
    };
    const refusedInAll = async (): Promise<number> => {
      const text = await (await fetch(`http://${server.healthAddr}/metrics`)).text();
      const m = /^tessera_api_rate_limited_total\{kind="attestation"\} (\d+)$/m.exec(text);
      return Number(m?.[1] ?? 0);
    };
    // The agent bootstraps from a bundle URL served here: the answer waits until the bucket is
    // empty, and the other node keeps it empty until the agent has been refused once.
    const tls = makeTlsFiles(dir);
    writeFileSync(path.join(dir, 'ca-only.pem'), tls.caPem);
    const agentRefused = Promise.withResolvers<void>();
    https = createHttpsServer(
      { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
      (_req, res) => {
        void (async () => {
          while (await takeToken());
          res.end(pem);
          const deadline = Date.now() + 120_000;
          while ((await refusedInAll()) <= otherRefused) {
            if (Date.now() > deadline) throw new Error('the agent was never refused');
            await takeToken();
            await new Promise((r) => setTimeout(r, 20));
          }
          agentRefused.resolve();
        })().catch((e: unknown) => agentRefused.reject(e));
      },
    );
    await new Promise<void>((r) => https?.listen(0, '127.0.0.1', r));
    const port = (https.address() as AddressInfo).port;
    const t = await admin.agents.createJoinToken({});
    agent = await startAgent(server, {
      joinToken: t.token,
      trustBundleUrl: `https://127.0.0.1:${port}/bundle`,
      env: { NODE_EXTRA_CA_CERTS: path.join(dir, 'ca-only.pem') },
      readyWithinMs: 120_000,
    });
    await agentRefused.promise;
    assert.match(agent.output(), /attestation rate-limited; retrying/);
    const shown = await admin.agents.getAgent({ spiffeId: t.agentSpiffeId });
    assert.equal(shown.agent?.spiffeId, t.agentSpiffeId, 'attested after waiting');
  });
});
