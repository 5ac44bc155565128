// `tessera server run` in-process: starts, answers healthcheck, stops cleanly on abort; bad
// config is a usage error with a message, not a stack trace.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../testing/harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const env = { TESSERA_LOG_LEVEL: 'silent' };

async function waitFor(check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('server run: flags override the config file; serves until aborted', async () => {
  const config = path.join(dir, 'server.yaml');
  const dataDir = path.join(dir, 'data');
  const socket = path.join(dir, 'admin.sock');
  writeFileSync(config, `trust_domain: wrong.org\ndata_dir: ${dataDir}\nlisten: 127.0.0.1:0\n`);
  const ac = new AbortController();
  const running = runCli(
    [
      'server',
      'run',
      '--config',
      config,
      '--trust-domain',
      'example.org',
      '--admin-socket',
      socket,
      '--health-listen',
      '127.0.0.1:0',
    ],
    env,
    ac.signal,
  );
  try {
    await waitFor(() => existsSync(socket));
    const hc = await runCli(['healthcheck', '--socket', socket, '--output', 'json'], env);
    assert.equal(hc.code, 0, hc.stderr);
    assert.equal(JSON.parse(hc.stdout).trustDomain, 'example.org');
    assert.ok(existsSync(path.join(dataDir, 'datastore.sqlite3')), 'data_dir from the file');
  } finally {
    ac.abort();
  }
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^tessera server ready: api 127\.0\.0\.1:\d+, admin socket /m);
});

test('server run: a stop before the start (while loading) exits 0 and opens nothing', async () => {
  const dataDir = path.join(dir, 'stopped-early');
  const ac = new AbortController();
  ac.abort();
  const r = await runCli(
    [
      'server',
      'run',
      '--trust-domain',
      'example.org',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--health-listen',
      '127.0.0.1:0',
    ],
    env,
    ac.signal,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(existsSync(dataDir), false, 'no data directory, store or lock was created');
});

test('server run: bad config exits 2 with the key path', async () => {
  const noTd = await runCli(['server', 'run', '--data-dir', path.join(dir, 'x')], env);
  assert.equal(noTd.code, 2);
  assert.match(noTd.stderr, /^error: config: trust_domain: required: pass --trust-domain/);
  const badTd = await runCli(
    ['server', 'run', '--trust-domain', 'Bad_TD', '--data-dir', path.join(dir, 'x')],
    env,
  );
  assert.equal(badTd.code, 2);
  assert.match(badTd.stderr, /^error: config: trust_domain: /);
  const badListen = await runCli(
    ['server', 'run', '--trust-domain', 'example.org', '--listen', 'nope'],
    env,
  );
  assert.equal(badListen.code, 2);
  assert.match(badListen.stderr, /^error: config: listen: expected HOST:PORT/);
  const missing = await runCli(['server', 'run', '--config', path.join(dir, 'missing.yaml')], env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: config file .*missing\.yaml: ENOENT/);
  const unknown = path.join(dir, 'unknown.yaml');
  writeFileSync(unknown, 'trust_domain: example.org\nlistn: 127.0.0.1:1\n');
  const typo = await runCli(['server', 'run', '--config', unknown], env);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown key "listn"/);
});

test('usage errors exit 2; help and version exit 0', async () => {
  const none = await runCli([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Usage: tessera/);
  const unknown = await runCli(['entry', 'frob']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frob'/);
  const badOutput = await runCli(['entry', 'list', '--output', 'yaml']);
  assert.equal(badOutput.code, 2);
  const help = await runCli(['entry', 'create', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--federates-with <td\.\.\.>/);
  const version = await runCli(['--version']);
  assert.deepEqual(version, { code: 0, stdout: '0.1.0\n', stderr: '' });
});
