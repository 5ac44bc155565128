// token, agent, authority, audit and healthcheck against a real server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { runCli, startTestServer, type TestServer } from '../testing/harness.ts';

let s: TestServer;

before(async () => {
  s = await startTestServer();
});
after(() => s.stop());

describe('token generate', () => {
  test('table: the token alone on the first stdout line, context on stderr', async () => {
    const r = await s.cli('token', 'generate', '--ttl', '5m');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[A-Za-z0-9_-]{16,}\n$/);
    assert.match(
      r.stderr,
      /^agent SPIFFE ID: spiffe:\/\/example\.org\/spire\/agent\/join_token\//m,
    );
    assert.match(r.stderr, /^expires at: \d{4}-/m);
  });

  test('json, with a node alias (--spiffe-id): the agent keeps its join_token ID', async () => {
    const r = await s.cli(
      'token',
      'generate',
      '--spiffe-id',
      'spiffe://example.org/nodes/node1',
      '--output',
      'json',
    );
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.match(j.agentSpiffeId, /^spiffe:\/\/example\.org\/spire\/agent\/join_token\/[\w-]+$/);
    assert.equal(typeof j.token, 'string');
    assert.ok(Date.parse(j.expiresAt) > Date.now());
    const alias = await s.cli(
      'entry',
      'list',
      '--spiffe-id',
      'spiffe://example.org/nodes/node1',
      '--output',
      'json',
    );
    const [entry] = JSON.parse(alias.stdout).entries;
    assert.equal(entry.parentId, j.agentSpiffeId);
    assert.deepEqual(entry.selectors, [`spiffe_id:${j.agentSpiffeId}`]);
  });

  test('an alias under /spire/ is refused, nothing created', async () => {
    const r = await s.cli(
      'token',
      'generate',
      '--spiffe-id',
      'spiffe://example.org/spire/agent/n1',
    );
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'error: spiffe_id: paths under /spire/ are reserved for the server and agents\n',
    );
  });
});

describe('agent', () => {
  test('list is empty; show of an unknown agent exits 3', async () => {
    const t = await s.cli('agent', 'list');
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout.trim(), 'SPIFFE ID  ATTESTATION  EXPIRES AT  BANNED');
    const j = await s.cli('agent', 'list', '--output', 'json');
    assert.deepEqual(JSON.parse(j.stdout), { agents: [] });
    const show = await s.cli(
      'agent',
      'show',
      '--spiffe-id',
      'spiffe://example.org/spire/agent/nope',
    );
    assert.equal(show.code, 3);
    const bad = await s.cli('agent', 'list', '--banned', 'maybe');
    assert.equal(bad.code, 2);
  });
});

describe('authority', () => {
  test('show, then a forced x509 rotation: prepare → activate', async () => {
    const before = JSON.parse(
      (await s.cli('authority', 'show', '--output', 'json')).stdout,
    ).authorities;
    assert.deepEqual(before.map((a: { kind: string }) => a.kind).sort(), ['jwt', 'x509']);
    const active = before.find((a: { kind: string }) => a.kind === 'x509');
    assert.match(active.certificatePem, /^-----BEGIN CERTIFICATE-----/);
    const prep = await s.cli('authority', 'prepare', '--kind', 'x509', '--output', 'json');
    assert.equal(prep.code, 0, prep.stderr);
    const prepared = JSON.parse(prep.stdout);
    assert.equal(prepared.status, 'prepared');
    const act = await s.cli('authority', 'activate', '--kind', 'x509');
    assert.equal(act.code, 0, act.stderr);
    assert.match(
      act.stdout,
      new RegExp(`^x509 authority ${prepared.id} activated \\(status active\\)`),
    );
    const table = await s.cli('authority', 'show', '--kind', 'x509');
    assert.match(table.stdout, new RegExp(`^x509 +active +${prepared.id}`, 'm'));
    assert.match(table.stdout, new RegExp(`^x509 +old +${active.id}`, 'm'));
  });

  test('--kind is required and checked', async () => {
    assert.equal((await s.cli('authority', 'prepare')).code, 2);
    assert.equal((await s.cli('authority', 'prepare', '--kind', 'rsa')).code, 2);
  });

  test('activating with nothing prepared is a failed precondition (exit 7)', async () => {
    const r = await s.cli('authority', 'activate', '--kind', 'jwt');
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /^error: /);
  });
});

describe('audit', () => {
  test('list shows the admin changes; filters and json', async () => {
    await s.cli(
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/a',
      '--parent-id',
      'spiffe://example.org/p',
      '--selector',
      'a:b',
    );
    const t = await s.cli('audit', 'list');
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^SEQ +TIME +ACTOR +ACTION +TARGET +OUTCOME$/m);
    assert.match(t.stdout, /local-admin +entry\.create/);
    const j = JSON.parse(
      (await s.cli('audit', 'list', '--action', 'entry.create', '--output', 'json')).stdout,
    );
    assert.ok(j.records.length >= 1);
    for (const r of j.records) assert.equal(r.action, 'entry.create');
    const rec = j.records[0];
    assert.equal(typeof rec.seq, 'number');
    assert.match(rec.time, /Z$/);
    assert.match(rec.hash, /^[0-9a-f]{64}$/);
    const first = JSON.parse(
      (await s.cli('audit', 'list', '--limit', '1', '--output', 'json')).stdout,
    ).records;
    assert.equal(first.length, 1);
    const after = JSON.parse(
      (
        await s.cli(
          'audit',
          'list',
          '--after',
          String(first[0].seq),
          '--limit',
          '1',
          '--output',
          'json',
        )
      ).stdout,
    );
    assert.equal(after.records[0].seq, first[0].seq + 1);
    const tail = JSON.parse(
      (await s.cli('audit', 'list', '--tail', '--limit', '2', '--output', 'json')).stdout,
    ).records;
    assert.ok(tail[0].seq > tail[1].seq, 'newest first');
  });

  test('verify: ok on an intact chain', async () => {
    const r = await s.cli('audit', 'verify');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: \d+ records verified\n$/);
    const j = JSON.parse((await s.cli('audit', 'verify', '--output', 'json')).stdout);
    assert.equal(j.ok, true);
    assert.ok(j.count > 0);
  });

  test('verify: a tampered record exits 8 naming its seq', async () => {
    const db = new DatabaseSync(path.join(s.dir, 'datastore.sqlite3'));
    try {
      db.prepare("UPDATE audit SET target = 'tampered' WHERE seq = 2").run();
    } finally {
      db.close();
    }
    const r = await s.cli('audit', 'verify');
    assert.equal(r.code, 8);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: audit chain broken at seq 2: /);
    const j = await s.cli('audit', 'verify', '--output', 'json');
    assert.equal(j.code, 8);
    const doc = JSON.parse(j.stdout);
    assert.equal(doc.ok, false);
    assert.equal(doc.badSeq, 2);
    assert.match(doc.reason, /\S/);
  });
});

describe('healthcheck', () => {
  test('ok when the server is ready', async () => {
    const r = await s.cli('healthcheck');
    assert.deepEqual(r, { code: 0, stdout: 'ok\n', stderr: '' });
    const j = JSON.parse((await s.cli('healthcheck', '--output', 'json')).stdout);
    assert.equal(j.ready, true);
    assert.equal(j.trustDomain, 'example.org');
  });

  test('exit 6 with a pointer when nothing listens on the socket', async () => {
    const r = await runCli(['healthcheck', '--socket', `${s.dir}/nope.sock`]);
    assert.equal(r.code, 6);
    assert.match(
      r.stderr,
      /^error: cannot reach the server at admin socket .*nope\.sock \(no such socket\)/,
    );
  });
});
