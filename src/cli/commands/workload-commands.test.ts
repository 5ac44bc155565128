// The workload-side commands end to end: a real server and a real agent in this process, this
// test process registered as a workload (unix:uid), and every command driven through run().
// Results are checked with independent tools where possible (openssl, jose, node:crypto).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { runCli } from '../testing/harness.ts';
import { startTestAgent, waitUntil, type TestAgentStand } from '../testing/agent-harness.ts';
import { leaveStaleSocket } from '../../../test/helpers/stale-socket.ts';
import { defaultWorkloadSocket, workloadAddress } from './workload-common.ts';

const WEB = 'spiffe://example.org/web';
const DB = 'spiffe://example.org/db';
const AUD = 'spiffe://example.org/api';

let s: TestAgentStand;
let out: string;
const entryIds: string[] = [];

before(async () => {
  s = await startTestAgent();
  out = mkdtempSync(path.join(tmpdir(), 'tessera-cli-wl-'));
});
after(async () => {
  await s?.stop();
  if (out) rmSync(out, { recursive: true, force: true });
});

const certs = (pem: string) =>
  [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)].map(
    (m) => new X509Certificate(m[0]),
  );

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

describe('workload commands', () => {
  describe('before any entry exists', () => {
    test('svid fetch: no identity → exit 5, saying so', async () => {
      const r = await s.workload('svid', 'fetch');
      assert.equal(r.code, 5, r.stderr);
      assert.match(
        r.stderr,
        /^error: no identity issued to this process by the Workload API at socket /,
      );
      assert.ok(r.stderr.includes(s.workloadSocket));
      assert.equal(r.stdout, '');
    });

    test('jwt fetch and bundle fetch: no identity → exit 5', async () => {
      assert.equal((await s.workload('jwt', 'fetch', '--audience', AUD)).code, 5);
      assert.equal((await s.workload('bundle', 'fetch')).code, 5);
    });

    test('a missing agent socket → exit 6 naming the socket, under either flag spelling', async () => {
      const missing = path.join(out, 'no-agent', 'api.sock');
      for (const args of [
        ['svid', 'fetch'],
        ['svid', 'watch'],
        ['jwt', 'fetch', '--audience', AUD],
        ['jwt', 'validate', '--audience', AUD, 'a.b.c'],
        ['bundle', 'fetch', '--format', 'jwks'],
      ]) {
        // --socket is the older spelling of --workload-socket on these commands.
        for (const flag of ['--workload-socket', '--socket']) {
          const r = await runCli([...args, flag, missing]);
          assert.equal(r.code, 6, `${args.join(' ')} ${flag}: ${r.stderr}`);
          assert.equal(
            r.stderr,
            `error: no agent is listening on ${missing} (there is no socket file); is the agent running? (use --workload-socket or SPIFFE_ENDPOINT_SOCKET)\n`,
          );
        }
      }
    });

    test('a socket file nobody listens on → exit 6 saying exactly that', async () => {
      const stale = path.join(out, 'stale-agent.sock');
      await leaveStaleSocket(stale);
      for (const args of [
        ['svid', 'fetch'],
        ['jwt', 'fetch', '--audience', AUD],
      ]) {
        const r = await runCli([...args, '--workload-socket', stale]);
        assert.equal(r.code, 6, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(
          r.stderr,
          `error: no agent is listening on ${stale} (the socket file exists, but nothing accepts connections); is the agent running? (use --workload-socket or SPIFFE_ENDPOINT_SOCKET)\n`,
        );
      }
    });

    test('--help names --workload-socket and not the admin --socket', async () => {
      for (const args of [
        ['svid', 'fetch'],
        ['jwt', 'validate'],
        ['bundle', 'fetch'],
      ]) {
        const r = await runCli([...args, '--help']);
        assert.equal(r.code, 0);
        assert.match(r.stdout, /--workload-socket <path>/);
        assert.doesNotMatch(r.stdout, /--socket/);
      }
    });

    test('without --workload-socket: SPIFFE_ENDPOINT_SOCKET, else the agent default', async () => {
      assert.equal(defaultWorkloadSocket({}), '/tmp/tessera-agent/public/api.sock');
      const missing = path.join(out, 'env-agent', 'api.sock');
      const r = await runCli(['svid', 'fetch'], { SPIFFE_ENDPOINT_SOCKET: `unix://${missing}` });
      assert.equal(r.code, 6);
      assert.ok(r.stderr.includes(missing), r.stderr);
      const bad = await runCli(['svid', 'fetch'], { SPIFFE_ENDPOINT_SOCKET: 'http://x' });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /invalid Workload API address "http:\/\/x"/);
    });
  });

  describe('with an entry for this process', () => {
    before(async () => {
      entryIds.push(await s.registerSelf(WEB, '--dns', 'web.example.org'));
      await s.waitForSvid(WEB);
    });

    test('svid fetch (table): the SVID and the bundle trust domains', async () => {
      const r = await s.workload('svid', 'fetch');
      assert.equal(r.code, 0, r.stderr);
      const [header, row, blank, bheader, brow] = r.stdout.split('\n');
      assert.match(header ?? '', /^SPIFFE ID\s+HINT\s+EXPIRES AT\s+SERIAL\s+DNS NAMES$/);
      assert.match(
        row ?? '',
        /^spiffe:\/\/example\.org\/web\s+-\s+\d{4}-\S+Z\s+[0-9A-F]+\s+web\.example\.org$/,
      );
      assert.equal(blank, '');
      assert.match(bheader ?? '', /^TRUST DOMAIN\s+KIND\s+AUTHORITIES$/);
      assert.match(brow ?? '', /^example\.org\s+own\s+1$/);
    });

    test('svid fetch --output json, with a plain-path --socket', async () => {
      const r = await runCli(['svid', 'fetch', '--output', 'json', '--socket', s.workloadSocket]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.svids.length, 1);
      const [svid] = doc.svids;
      assert.equal(svid.spiffeId, WEB);
      assert.equal(svid.hint, '');
      assert.deepEqual(svid.dnsNames, ['web.example.org']);
      assert.match(svid.serialNumber, /^[0-9A-F]+$/);
      assert.ok(Date.parse(svid.expiresAt) > Date.now());
      assert.deepEqual(doc.bundles, [
        { trustDomain: 'example.org', federated: false, authorities: 1 },
      ]);
    });

    test('svid fetch --write: svid.pem, svid.key (0600), bundle.pem that openssl verifies', async () => {
      const dir = path.join(out, 'one');
      const r = await s.workload('svid', 'fetch', '--write', dir, '--output', 'json');
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.spiffeId, WEB);
      assert.deepEqual(doc.files, {
        svid: path.join(dir, 'svid.pem'),
        key: path.join(dir, 'svid.key'),
        bundle: path.join(dir, 'bundle.pem'),
        federated: {},
      });
      assert.equal(doc.svids.length, 1);
      assert.equal(statSync(doc.files.key).mode & 0o777, 0o600);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      const keyPem = readFileSync(doc.files.key, 'utf8');
      assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
      const [leaf] = certs(readFileSync(doc.files.svid, 'utf8'));
      assert.ok(leaf?.checkPrivateKey(createPrivateKey(keyPem)));
      assert.equal(leaf?.subjectAltName?.includes(`URI:${WEB}`), true);
      const v = spawnSync('openssl', ['verify', '-CAfile', doc.files.bundle, doc.files.svid], {
        encoding: 'utf8',
      });
      assert.equal(v.status, 0, v.stderr);
      assert.match(v.stdout, /: OK$/m);
      // Table mode says what it wrote.
      const t = await s.workload('svid', 'fetch', '--write', dir);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout, /^SPIFFE ID:\s+spiffe:\/\/example\.org\/web$/m);
      assert.match(t.stdout, /^Wrote:\s+.*svid\.pem, .*svid\.key, .*bundle\.pem$/m);
    });

    test('jwt fetch (table): the token alone on stdout, context on stderr', async () => {
      const r = await s.workload('jwt', 'fetch', '--audience', AUD);
      assert.equal(r.code, 0, r.stderr);
      const [token, ...rest] = lines(r.stdout);
      assert.equal(rest.length, 0);
      assert.equal(token?.split('.').length, 3);
      assert.match(r.stderr, /^SPIFFE ID: spiffe:\/\/example\.org\/web$/m);
      assert.match(r.stderr, /^expires at: \d{4}-\S+Z$/m);
    });

    test('jwt fetch --output json verifies against bundle fetch --format jwks (jose)', async () => {
      const r = await s.workload('jwt', 'fetch', '--audience', AUD, 'other', '--output', 'json');
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.deepEqual(Object.keys(doc).sort(), ['expiresAt', 'hint', 'spiffeId', 'token']);
      assert.equal(doc.spiffeId, WEB);
      const jwks = await s.workload('bundle', 'fetch', '--format', 'jwks');
      assert.equal(jwks.code, 0, jwks.stderr);
      const set = JSON.parse(jwks.stdout);
      assert.deepEqual(Object.keys(set), ['example.org']);
      const keys = set['example.org'].keys as (JWK & { kid: string })[];
      assert.ok(keys.length >= 1);
      const header = decodeProtectedHeader(doc.token);
      const jwk = keys.find((k) => k.kid === header.kid);
      assert.ok(jwk, 'the token kid is in the JWKS');
      const { payload } = await jwtVerify(doc.token, await importJWK(jwk, header.alg), {
        audience: AUD,
      });
      assert.equal(payload.sub, WEB);
      assert.deepEqual(payload.aud, [AUD, 'other']);
      assert.equal(new Date((payload.exp as number) * 1000).toISOString(), doc.expiresAt);
      // --output json prints the same document.
      const j = await s.workload('bundle', 'fetch', '--format', 'jwks', '--output', 'json');
      assert.deepEqual(JSON.parse(j.stdout), set);
    });

    test('jwt validate: a valid token → exit 0 with the SPIFFE ID and claims', async () => {
      const token = lines((await s.workload('jwt', 'fetch', '--audience', AUD)).stdout)[0] ?? '';
      const r = await s.workload('jwt', 'validate', '--audience', AUD, token);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^SPIFFE ID:\s+spiffe:\/\/example\.org\/web$/m);
      assert.match(r.stdout, /^sub:\s+spiffe:\/\/example\.org\/web$/m);
      assert.match(r.stdout, /^exp:\s+\d+ \(\d{4}-\S+Z\)$/m);
      const j = await s.workload('jwt', 'validate', '--audience', AUD, token, '--output', 'json');
      assert.equal(j.code, 0, j.stderr);
      const doc = JSON.parse(j.stdout);
      assert.equal(doc.valid, true);
      assert.equal(doc.spiffeId, WEB);
      assert.equal(doc.claims.sub, WEB);
      assert.ok([doc.claims.aud].flat().includes(AUD));
    });

    test('jwt validate: tampered token or wrong audience → exit 2 with the reason', async () => {
      const token = lines((await s.workload('jwt', 'fetch', '--audience', AUD)).stdout)[0] ?? '';
      const [h, p, sig] = token.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      claims.sub = 'spiffe://example.org/admin';
      const forged = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), sig].join('.');
      const r = await s.workload('jwt', 'validate', '--audience', AUD, forged);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^error: invalid JWT-SVID: .+/);
      assert.equal(r.stdout, '');
      const j = await s.workload('jwt', 'validate', '--audience', AUD, forged, '--output', 'json');
      assert.equal(j.code, 2);
      assert.equal(JSON.parse(j.stdout).valid, false);
      assert.equal(typeof JSON.parse(j.stdout).reason, 'string');
      const junk = await s.workload('jwt', 'validate', '--audience', AUD, 'junk');
      assert.equal(junk.code, 2);
      assert.match(junk.stderr, /^error: invalid JWT-SVID: not a JWS compact serialization/);
      const aud = await s.workload('jwt', 'validate', '--audience', 'spiffe://x/y', token);
      assert.equal(aud.code, 2);
      assert.match(aud.stderr, /^error: invalid JWT-SVID: audience mismatch/);
    });

    test('bundle fetch: PEM per trust domain that openssl takes as a CA file; JSON', async () => {
      const r = await s.workload('bundle', 'fetch');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^# example\.org\n-----BEGIN CERTIFICATE-----\n/);
      assert.equal(certs(r.stdout).length, 1);
      const caFile = path.join(out, 'fetched-bundle.pem');
      writeFileSync(caFile, r.stdout);
      const dir = path.join(out, 'for-bundle');
      assert.equal((await s.workload('svid', 'fetch', '--write', dir)).code, 0);
      const v = spawnSync('openssl', ['verify', '-CAfile', caFile, path.join(dir, 'svid.pem')], {
        encoding: 'utf8',
      });
      assert.equal(v.status, 0, v.stderr);
      const j = await s.workload('bundle', 'fetch', '--output', 'json');
      const doc = JSON.parse(j.stdout);
      assert.deepEqual(Object.keys(doc), ['example.org']);
      assert.equal(doc['example.org'].length, 1);
      assert.equal(doc['example.org'][0], certs(r.stdout)[0]?.toString());
    });

    test('svid watch --output json: the initial state, then a line for a new entry', async () => {
      const w = s.follow('svid', 'watch', '--output', 'json');
      const events = () => lines(w.stdout()).map((l) => JSON.parse(l));
      try {
        await waitUntil('the initial line', () => events().length >= 1);
        entryIds.push(await s.registerSelf(DB, '--hint', 'db'));
        await waitUntil('an update adding db', () =>
          events().some((e) => e.added.includes(`${DB}#db`)),
        );
      } finally {
        const r = await w.stop();
        assert.equal(r.code, 0, r.stderr);
      }
      const [first, ...updates] = events();
      assert.equal(first.event, 'initial');
      assert.deepEqual(first.added, [WEB]);
      assert.deepEqual(
        first.svids.map((x: { spiffeId: string }) => x.spiffeId),
        [WEB],
      );
      assert.deepEqual(first.bundles, ['example.org']);
      const added = updates.find((e) => e.added.includes(`${DB}#db`));
      assert.equal(added.event, 'update');
      assert.deepEqual(added.removed, []);
      assert.deepEqual(
        added.svids
          .map((x: { spiffeId: string; hint: string }) => `${x.spiffeId}#${x.hint}`)
          .sort(),
        [`${DB}#db`, `${WEB}#`],
      );
    });

    test('svid watch (table): one line per update; stops on the signal', async () => {
      const w = s.follow('svid', 'watch');
      const third = 'spiffe://example.org/cache';
      try {
        await waitUntil('the initial line', () => lines(w.stdout()).length >= 1);
        entryIds.push(await s.registerSelf(third, '--hint', 'cache'));
        await waitUntil('an update line', () => / update added=/.test(w.stdout()));
      } finally {
        const r = await w.stop();
        assert.equal(r.code, 0, r.stderr);
      }
      const ls = lines(w.stdout());
      assert.match(
        ls[0] ?? '',
        /^\d{4}-\S+Z initial svids=.*spiffe:\/\/example\.org\/web\(expires /,
      );
      assert.ok(
        ls.some((l) => / update added=spiffe:\/\/example\.org\/cache#cache svids=/.test(l)),
        w.stdout(),
      );
    });

    test('svid fetch --write with several SVIDs: svid.<n>.pem and svid.<n>.key', async () => {
      const dir = path.join(out, 'several');
      // Left from an earlier run with more SVIDs: deleted; a file that is not ours: kept.
      mkdirSync(dir, { recursive: true });
      for (const f of ['svid.3.pem', 'svid.3.key', 'svid.7.key', 'notes.txt']) {
        writeFileSync(path.join(dir, f), 'old');
      }
      const r = await s.workload('svid', 'fetch', '--write', dir, '--output', 'json');
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      // The agent orders SVIDs oldest entry first; the first is the default (svid.pem).
      assert.deepEqual(
        doc.svids.map((x: { index: number }) => x.index),
        [0, 1, 2],
      );
      assert.equal(doc.spiffeId, doc.svids[0].spiffeId);
      assert.deepEqual(
        doc.svids.map((x: { spiffeId: string }) => x.spiffeId).sort(),
        [DB, WEB, 'spiffe://example.org/cache'].sort(),
      );
      for (const n of [1, 2]) {
        const key = path.join(dir, `svid.${n}.key`);
        assert.equal(statSync(key).mode & 0o777, 0o600);
        const [leaf] = certs(readFileSync(path.join(dir, `svid.${n}.pem`), 'utf8'));
        assert.ok(leaf?.checkPrivateKey(createPrivateKey(readFileSync(key, 'utf8'))));
        assert.ok(leaf?.subjectAltName?.startsWith(`URI:${doc.svids[n].spiffeId}`));
      }
      for (const f of ['svid.3.pem', 'svid.3.key', 'svid.7.key']) {
        assert.equal(existsSync(path.join(dir, f)), false, `${f} deleted`);
      }
      assert.equal(readFileSync(path.join(dir, 'notes.txt'), 'utf8'), 'old');
    });

    test('jwt fetch --spiffe-id picks that identity', async () => {
      const r = await s.workload(
        'jwt',
        'fetch',
        '--audience',
        AUD,
        '--spiffe-id',
        DB,
        '--output',
        'json',
      );
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.spiffeId, DB);
      assert.equal(doc.hint, 'db');
    });

    // Last: it deletes every entry.
    test('svid watch: a removed entry, then no identity at all (the watch keeps going)', async () => {
      const w = s.follow('svid', 'watch', '--output', 'json');
      const events = () => lines(w.stdout()).map((l) => JSON.parse(l));
      let r;
      let removals: Array<{ removed: string[]; svids: Array<{ spiffeId: string }> }> = [];
      try {
        await waitUntil('the initial line', () => events().length >= 1);
        const [web, ...others] = entryIds;
        const del = await s.admin('entry', 'delete', '--id', ...others);
        assert.equal(del.code, 0, del.stderr);
        // One update or two: the deletions commit one by one, and the server pushes each.
        const updates = () => events().filter((e) => e.event === 'update');
        await waitUntil(
          'updates removing db and cache',
          () => updates().reduce((n, e) => n + e.removed.length, 0) >= 2,
        );
        removals = updates();
        assert.equal((await s.admin('entry', 'delete', '--id', web as string)).code, 0);
        await waitUntil('a no-identity line', () =>
          events().some((e) => e.event === 'no-identity'),
        );
      } finally {
        r = await w.stop();
      }
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(removals.flatMap((e) => e.removed).sort(), [
        'spiffe://example.org/cache#cache',
        `${DB}#db`,
      ]);
      assert.deepEqual(
        removals.at(-1)?.svids.map((x) => x.spiffeId),
        [WEB],
      );
      const gone = events().find((e) => e.event === 'no-identity');
      assert.deepEqual(gone.removed, [WEB]);
      assert.deepEqual(gone.svids, []);
      assert.match(r.stderr, /^warning: no identity issued to this process .*; retrying in \d+s$/m);
      // And a one-shot fetch now exits 5 again.
      assert.equal((await s.workload('svid', 'fetch')).code, 5);
    });
  });
});

describe('workloadAddress', () => {
  test('URIs pass through; paths become unix:// URIs with percent-encoding', () => {
    assert.equal(workloadAddress('unix:///run/a.sock'), 'unix:///run/a.sock');
    assert.equal(workloadAddress('tcp://127.0.0.1:8081'), 'tcp://127.0.0.1:8081');
    assert.equal(workloadAddress('/run/a b%?#.sock'), 'unix:///run/a%20b%25%3F%23.sock');
    assert.equal(workloadAddress('rel/a.sock'), `unix://${path.resolve('rel/a.sock')}`);
  });
});
