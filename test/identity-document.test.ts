// Signed identity documents, black box (docs/identity-document.md): a real server with its public
// listener, a real agent, the CLI as a workload runs it (`tessera attest`). The document is
// verified as a third party does, with jose against the server's JWKS URL; a tampered token and a
// wrong audience are refused; only the attributes the entry discloses are in it; an entry whose
// condition is false gets no document (audited), nor does a bad --disclose get stored.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import { adminClients, type AdminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { CHAINED, DEADLINE_MS, UID, joinToken, serves } from './helpers/serving-agent.ts';

const DOC_ID = 'spiffe://example.org/doc/api';
const GUARDED = 'spiffe://example.org/doc/guarded';
const AUDIENCE = 'https://relying-party.example';
/** What the unix attestor hashes for the CLI process: the node binary this test runs on too. */
const BINARY = `sha256:${createHash('sha256').update(readFileSync(process.execPath)).digest('hex')}`;

describe('identity document', CHAINED, () => {
  let server: ServerProcess;
  let agent: AgentProcess;
  let admin: AdminClients;
  let issuer: string;
  let jwks: ReturnType<typeof jose.createRemoteJWKSet>;
  const cli = (...args: string[]) =>
    runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket }, deadlineMs: 90_000 });
  const attest = (...args: string[]) => cli('attest', '--socket', agent.socketPath, ...args);

  before(async () => {
    const port = await freePort();
    server = await startServer({ config: { public_listen: `127.0.0.1:${port}` } });
    issuer = `http://127.0.0.1:${port}`;
    jwks = jose.createRemoteJWKSet(new URL(`${issuer}/keys`));
    admin = adminClients(server.adminSocket);
    const t = await joinToken(admin);
    const create = (id: string, ...extra: string[]) =>
      cli(
        'entry',
        'create',
        '--spiffe-id',
        id,
        '--parent-id',
        t.agentSpiffeId,
        '--selector',
        `unix:uid:${UID}`,
        ...extra,
      );
    const bad = await create(DOC_ID, '--disclose', 'image.digest,image.digets');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /disclose: unknown attribute "image\.digets"/);
    const none = await cli('entry', 'list', '--output', 'json');
    assert.deepEqual((JSON.parse(none.stdout) as { entries: unknown[] }).entries, []);

    const ok = await create(DOC_ID, '--disclose', 'binary.sha256,posture,node.attestor');
    assert.equal(ok.code, 0, ok.stderr);
    const guarded = await create(GUARDED, '--condition', 'posture.critical == 1');
    assert.equal(guarded.code, 0, guarded.stderr);
    agent = await startAgent(server, { joinToken: t.token });
    await waitFor(() => serves(agent.socketPath, DOC_ID), DEADLINE_MS);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it('the entry shows its disclose list', async () => {
    const r = await cli('entry', 'list', '--output', 'json');
    const entries = (
      JSON.parse(r.stdout) as { entries: { spiffeId: string; disclose?: string[] }[] }
    ).entries;
    const e = entries.find((x) => x.spiffeId === DOC_ID);
    assert.deepEqual(e?.disclose, ['binary.sha256', 'posture', 'node.attestor']);
  });

  it('tessera attest --output jwt prints a JWT jose verifies against the JWKS', async () => {
    const r = await attest('--output', 'jwt', '--audience', AUDIENCE, '--spiffe-id', DOC_ID);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer,
      audience: AUDIENCE,
      typ: 'tessera-id+jwt',
      algorithms: ['ES256'],
    });
    assert.equal(payload.sub, DOC_ID);
    assert.ok(typeof protectedHeader.kid === 'string' && protectedHeader.kid !== '');
    const life = (payload.exp ?? 0) - (payload.iat ?? 0);
    assert.ok(life > 0 && life <= 300, `exp - iat = ${life}`);
    // Exactly what the entry discloses: nothing else about the workload or its node.
    assert.deepEqual(payload.tessera, {
      attributes: {
        binary: { sha256: BINARY },
        node: { attestor: 'join_token' },
        posture: {
          scanned: false,
          critical: 0,
          high: 0,
          medium: 0,
          low: 0,
          unknown: 0,
          fixable: 0,
          scanner: '',
          scanned_at: 0,
          import_version: 0,
          subject: '',
        },
      },
    });
  });

  it('a tampered document and one for another audience are refused', async () => {
    const r = await attest('--audience', AUDIENCE, '--spiffe-id', DOC_ID);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    await assert.rejects(
      jose.jwtVerify(token, jwks, { issuer, audience: 'https://other.example' }),
      {
        code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
        claim: 'aud',
      },
    );
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    claims.tessera = { attributes: { posture: { critical: 0, scanned: true } } };
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    await assert.rejects(jose.jwtVerify(forged, jwks, { issuer, audience: AUDIENCE }), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  it('--output json prints the decoded claims beside the document', async () => {
    const r = await attest('--output', 'json', '--audience', AUDIENCE, '--spiffe-id', DOC_ID);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      spiffeId: string;
      expiresAt: string;
      header: { typ: string };
      claims: { sub: string; aud: string[]; tessera: { attributes: Record<string, unknown> } };
      document: string;
    };
    assert.equal(j.spiffeId, DOC_ID);
    assert.equal(j.header.typ, 'tessera-id+jwt');
    assert.deepEqual(j.claims.aud, [AUDIENCE]);
    assert.deepEqual(Object.keys(j.claims.tessera.attributes).sort(), [
      'binary',
      'node',
      'posture',
    ]);
    await jose.jwtVerify(j.document, jwks, { issuer, audience: AUDIENCE });
  });

  it('an entry whose condition is false gets no document, and the refusal is audited', async () => {
    const r = await attest('--audience', AUDIENCE, '--spiffe-id', GUARDED);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /condition not met: posture\.critical == 1/);
    const list = await cli('entry', 'list', '--output', 'json');
    const guardedId = (
      JSON.parse(list.stdout) as { entries: { id: string; spiffeId: string }[] }
    ).entries.find((e) => e.spiffeId === GUARDED)?.id;
    assert.ok(guardedId);
    const audit = await admin.audit.listAuditRecords({ limit: 1000, action: 'identity.document' });
    const docs = audit.records.filter((x) => x.action === 'identity.document');
    assert.ok(
      docs.some((x) => x.outcome === 'denied' && x.details?.entryId === guardedId),
      'the refusal is audited',
    );
    const issued = docs.filter((x) => x.outcome === 'success' && x.target === DOC_ID);
    assert.ok(issued.length >= 3);
    // The token is never in the audit log.
    assert.doesNotMatch(
      JSON.stringify(audit.records, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
      /eyJ[A-Za-z0-9_-]{20,}\./,
    );
  });

  it('an audience is required', async () => {
    const r = await cli('attest', '--socket', agent.socketPath);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--audience/);
  });

  it('a caller with no entry gets no document', async () => {
    // A join-token agent serves entries by uid; another SPIFFE ID is not this caller's.
    const r = await attest('--audience', AUDIENCE, '--spiffe-id', 'spiffe://example.org/other');
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /no identity issued to this process/);
  });
});
