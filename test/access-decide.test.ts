// Black-box: access decisions through the real CLI against a real server (SQLite). The checks of
// policy writes are the decider's (bad patterns and CEL refused, nothing stored); `access-policy
// test` decides at once after an admin change on this server; `what-if` parses a real access
// document and refuses a bad proposal naming it. (Allow policies need a credential provider type;
// the flips of what-if over recorded requests are covered by src/server/access/what-if.test.ts.)
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers/cli-process.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

const X = 'spiffe://example.org/ns/prod/sa/x';

describe('access decisions through the CLI', () => {
  let server: ServerProcess;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-access-decide-bb-'));
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  const tessera = (...args: string[]) =>
    runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket }, deadlineMs: 90_000 });

  async function decision(...extra: string[]): Promise<Record<string, unknown>> {
    const r = await tessera(
      ...['access-policy', 'test', '--client', X, '--server', 'db', '--output', 'json'],
      ...extra,
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  it('policy writes are checked by the decision engine; nothing bad is stored', async () => {
    const sw = await tessera(
      ...['server-workload', 'create', '--name', 'db', '--host', 'db.internal'],
      ...['--port', '5432', '--protocol', 'postgres'],
    );
    assert.equal(sw.code, 0, sw.stderr);
    const create = (name: string, client: string, ...more: string[]) =>
      tessera(
        'access-policy',
        'create',
        '--name',
        name,
        '--client',
        client,
        '--server',
        'db',
        '--deny',
        ...more,
      );
    let r = await create('p1', 'spiffe://example.org/ns/web-*');
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      'error: client: invalid pattern "spiffe://example.org/ns/web-*": "web-*": a wildcard must be a whole segment ("*" or a final "**")',
    );
    r = await create('p2', X, '--condition', '"always"');
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), 'error: condition: must evaluate to bool, not string');
    r = await create('p3', X, '--condition', 'x'.repeat(5000));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /condition: longer than 4096/);
    const list = await tessera('access-policy', 'list', '--output', 'json');
    assert.deepEqual(JSON.parse(list.stdout), { accessPolicies: [] });
  });

  it('test: decided at once after a change on this server; --at and --expect', async () => {
    assert.equal((await decision()).reason, 'no-matching-policy');
    const c = await tessera(
      ...[
        'access-policy',
        'create',
        '--name',
        'night-freeze',
        '--client',
        'spiffe://example.org/ns/**',
      ],
      ...['--server', 'db', '--deny', '--condition', 'now.hour >= 22 || now.hour < 6'],
    );
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(await decision('--at', '2026-12-07T23:00:00Z'), {
      decision: 'deny',
      reason: 'denied-by-policy',
      policy: 'night-freeze',
      credentialProvider: null,
      failedCondition: null,
      at: '2026-12-07T23:00:00.000Z',
    });
    assert.equal((await decision('--at', '2026-12-07T12:00:00Z')).reason, 'no-matching-policy');
    const expect = await tessera(
      ...['access-policy', 'test', '--client', X, '--server', 'db'],
      ...['--at', '2026-12-07T23:00:00Z', '--expect', 'allow'],
    );
    assert.equal(expect.code, 7);
    assert.match(expect.stdout, /^Policy: +night-freeze$/m);
    const d = await tessera('access-policy', 'delete', 'night-freeze');
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await decision('--at', '2026-12-07T23:00:00Z')).reason, 'no-matching-policy');
    const unknown = await tessera('access-policy', 'test', '--client', X, '--server', 'nope');
    assert.match(unknown.stdout, /^Reason: +unknown-server-workload$/m);
  });

  it('what-if parses the proposed document and refuses a bad proposal, naming it', async () => {
    const good = path.join(dir, 'good.yaml');
    writeFileSync(
      good,
      [
        'access_policies:',
        '  - name: freeze',
        `    client: spiffe://example.org`,
        '    server: db',
        '    deny: true',
        '',
      ].join('\n'),
    );
    const r = await tessera('access-policy', 'what-if', '--file', good, '--output', 'json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      replayed: 0,
      truncated: false,
      unreadable: 0,
      flipCount: 0,
      allowToDeny: 0,
      denyToAllow: 0,
      flips: [],
    });
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      [
        'access_policies:',
        '  - name: freeze',
        '    client: spiffe://example.org/*/**/x',
        '    server: db',
        '    deny: true',
        '',
      ].join('\n'),
    );
    const b = await tessera('access-policy', 'what-if', '--file', bad);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /"\*\*" must be the last segment/);
    const unknownServer = path.join(dir, 'unknown.yaml');
    writeFileSync(
      unknownServer,
      [
        'access_policies:',
        '  - name: freeze',
        '    client: spiffe://example.org',
        '    server: cache',
        '    deny: true',
        '',
      ].join('\n'),
    );
    const u = await tessera('access-policy', 'what-if', '--file', unknownServer, '--since', '7d');
    assert.equal(u.code, 2);
    assert.match(u.stderr, /access_policies "freeze": server: unknown server workload "cache"/);
  });
});
