import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../testing/harness.ts';

const PARENT = 'spiffe://example.org/spire/agent/join_token/abc';
let s: TestServer;

before(async () => {
  s = await startTestServer();
});
after(() => s.stop());

async function create(...extra: string[]) {
  return s.cli('entry', 'create', '--parent-id', PARENT, '--output', 'json', ...extra);
}

describe('entry', () => {
  let id = '';

  test('create prints the entry; repeatable and variadic flags both work', async () => {
    const r = await create(
      '--spiffe-id',
      'spiffe://example.org/web',
      '--selector',
      'unix:uid:1000',
      'unix:gid:50',
      '--selector',
      'docker:label:app:web',
      '--dns',
      'web.example.org',
      '--x509-ttl',
      '1h',
      '--jwt-ttl',
      '90s',
      '--hint',
      'frontend',
      '--expires-at',
      '2030-01-01T00:00:00Z',
      '--admin',
    );
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    id = e.id;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(e.selectors, ['docker:label:app:web', 'unix:gid:50', 'unix:uid:1000']);
    assert.equal(e.x509SvidTtl, 3600);
    assert.equal(e.jwtSvidTtl, 90);
    assert.deepEqual(e.dnsNames, ['web.example.org']);
    assert.equal(e.admin, true);
    assert.equal(e.downstream, false);
    assert.equal(e.expiresAt, '2030-01-01T00:00:00.000Z');
    assert.equal(e.revision, 1);
    assert.match(e.createdAt, /^\d{4}-\d\d-\d\dT/);
  });

  test('a duplicate exits 4 with a clear message', async () => {
    const r = await create(
      '--spiffe-id',
      'spiffe://example.org/web',
      '--selector',
      'unix:uid:1000',
      '--selector',
      'unix:gid:50',
      '--selector',
      'docker:label:app:web',
    );
    assert.equal(r.code, 4);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: cannot create entry: .*already exists/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('bad input exits 2 before anything is sent', async () => {
    const bad = await create('--spiffe-id', 'spiffe://example.org/x', '--selector', 'nocolon');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: --selector: invalid selector "nocolon"/);
    const missing = await s.cli('entry', 'create', '--spiffe-id', 'spiffe://example.org/x');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--parent-id is required/);
    const ttl = await create(
      '--spiffe-id',
      'spiffe://example.org/x',
      '--selector',
      'a:b',
      '--x509-ttl',
      'soon',
    );
    assert.equal(ttl.code, 2);
    assert.match(ttl.stderr, /--x509-ttl: invalid duration "soon"/);
    const foreign = await create('--spiffe-id', 'spiffe://other.org/x', '--selector', 'a:b');
    assert.equal(foreign.code, 2, 'server-side validation maps to 2 too');
    assert.match(foreign.stderr, /not in trust domain/);
  });

  test('show: table and json; unknown id exits 3', async () => {
    const t = await s.cli('entry', 'show', '--id', id);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^Entry ID: +[0-9a-f-]{36}$/m);
    assert.match(t.stdout, /^X509-SVID TTL: +1h$/m);
    const j = await s.cli('entry', 'show', '--id', id, '--output', 'json');
    assert.equal(JSON.parse(j.stdout).id, id);
    const gone = await s.cli('entry', 'show', '--id', '00000000-0000-4000-8000-000000000000');
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, /^error: .*not found/);
  });

  test('show ID: the ID as an argument too; two different IDs or none are usage errors', async () => {
    const t = await s.cli('entry', 'show', id, '--output', 'json');
    assert.equal(t.code, 0, t.stderr);
    assert.equal(JSON.parse(t.stdout).id, id);
    const same = await s.cli('entry', 'show', id, '--id', id, '--output', 'json');
    assert.equal(same.code, 0, same.stderr);
    const both = await s.cli('entry', 'show', id, '--id', '00000000-0000-4000-8000-000000000000');
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error: two different entry IDs/);
    const none = await s.cli('entry', 'show');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error: give the entry ID/);
  });

  test('--help marks the required options', async () => {
    const update = await s.cli('entry', 'update', '--help');
    assert.match(update.stdout, /^ {2}--id <id> +entry ID \(required\)$/m);
    assert.doesNotMatch(update.stdout, /--spiffe-id <id> .*\(required\)/);
    const create = await s.cli('entry', 'create', '--help');
    // The help wraps long lines: compare with whitespace folded.
    const flat = create.stdout.replace(/\s+/g, ' ');
    assert.match(flat, / --spiffe-id <id> SPIFFE ID the entry issues \(required\)/);
    assert.match(flat, / --parent-id <id> [^-]* may mint it \(required\)/);
    assert.match(flat, / --selector <type:value\.\.\.> [^-]*unix:uid:1000\) \(required\)/);
    assert.doesNotMatch(flat, /--hint <hint> [^-]*\(required\)/);
  });

  test('update changes only the given fields', async () => {
    const r = await s.cli(
      'entry',
      'update',
      '--id',
      id,
      '--hint',
      'backend',
      '--no-admin',
      '--no-dns',
      '--output',
      'json',
    );
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    assert.equal(e.hint, 'backend');
    assert.equal(e.admin, false);
    assert.deepEqual(e.dnsNames, []);
    assert.equal(e.x509SvidTtl, 3600, 'untouched');
    assert.equal(e.selectors.length, 3, 'untouched');
    assert.equal(e.revision, 2);
    const none = await s.cli('entry', 'update', '--id', id);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing to update/);
  });

  test('list: filters, paging with --all, and json shape', async () => {
    for (const n of [1, 2, 3]) {
      const r = await create(
        '--spiffe-id',
        `spiffe://example.org/svc${n}`,
        '--selector',
        `unix:uid:${n}`,
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const page = await s.cli('entry', 'list', '--page-size', '2', '--output', 'json');
    const p = JSON.parse(page.stdout);
    assert.equal(p.entries.length, 2);
    assert.equal(typeof p.nextPageToken, 'string');
    const all = JSON.parse(
      (await s.cli('entry', 'list', '--page-size', '2', '--all', '--output', 'json')).stdout,
    );
    assert.equal(all.entries.length, 4);
    assert.equal(all.nextPageToken, null);
    const bySel = JSON.parse(
      (await s.cli('entry', 'list', '--selector', 'unix:uid:2', '--output', 'json')).stdout,
    );
    assert.deepEqual(
      bySel.entries.map((e: { spiffeId: string }) => e.spiffeId),
      ['spiffe://example.org/svc2'],
    );
    const table = await s.cli('entry', 'list', '--spiffe-id', 'spiffe://example.org/web');
    assert.match(table.stdout, /^ENTRY ID +SPIFFE ID +PARENT ID +SELECTORS\n/);
    assert.equal(table.stdout.trim().split('\n').length, 2);
  });

  test('delete: several ids; a missing one exits 3 after deleting the rest', async () => {
    const ids = JSON.parse(
      (await s.cli('entry', 'list', '--all', '--output', 'json')).stdout,
    ).entries.map((e: { id: string }) => e.id);
    const missing = '00000000-0000-4000-8000-000000000000';
    const r = await s.cli('entry', 'delete', '--id', ids[0], '--id', missing, ids[1]);
    assert.equal(r.code, 3);
    assert.match(r.stdout, new RegExp(`^deleted ${ids[0]}$`, 'm'));
    assert.match(r.stderr, /cannot delete entry 00000000/);
    const left = JSON.parse(
      (await s.cli('entry', 'list', '--all', '--output', 'json')).stdout,
    ).entries;
    assert.equal(left.length, ids.length - 2);
  });
});
