// Default paths as the CLI shows and uses them: one admin socket and data directories wherever
// the command runs (SPIRE's convention), printed by --help as they are.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from './testing/harness.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const elsewhere = mkdtempSync(path.join(tmpdir(), 'tessera-cli-cwd-'));
after(() => rmSync(elsewhere, { recursive: true, force: true }));

/** The help of `args` as a real process run in `cwd` prints it, whitespace folded. */
function helpIn(cwd: string, args: string[], env: Record<string, string>): string {
  const r = spawnSync(process.execPath, [path.join(REPO, 'src/cli/main.ts'), ...args, '--help'], {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(/\s+/g, ' ');
}

test('the same admin socket and data directories from any working directory', () => {
  const env = { HOME: '/home/op' };
  for (const args of [
    ['entry', 'list'],
    ['server', 'run'],
    ['agent', 'run'],
  ]) {
    assert.equal(helpIn(REPO, args, env), helpIn(elsewhere, args, env), args.join(' '));
  }
  assert.match(
    helpIn(elsewhere, ['entry', 'list'], env),
    /--socket <path> server admin socket \(env TESSERA_ADMIN_SOCKET\) \(default: "\/home\/op\/\.local\/share\/tessera\/server\/admin\.sock"\)/,
  );
  assert.match(
    helpIn(elsewhere, ['server', 'run'], env),
    /default \/home\/op\/\.local\/share\/tessera\/server\)/,
  );
  const agent = helpIn(elsewhere, ['agent', 'run'], env);
  assert.match(agent, /default \/home\/op\/\.local\/share\/tessera\/agent\)/);
  assert.match(agent, /default \/tmp\/tessera-agent\/public\/api\.sock\)/);
  assert.match(
    helpIn(elsewhere, ['svid', 'fetch'], env),
    /\(default: "\/tmp\/tessera-agent\/public\/api\.sock"\)/,
  );
});

test('TESSERA_HOME, TESSERA_DATA_DIR and TESSERA_ADMIN_SOCKET move the admin socket', async () => {
  const socketDefault = async (env: Record<string, string>) => {
    const r = await runCli(['entry', 'list'], env);
    assert.equal(r.code, 6, r.stderr);
    return /admin socket (\S+) /.exec(r.stderr)?.[1];
  };
  assert.equal(await socketDefault({ TESSERA_HOME: elsewhere }), `${elsewhere}/server/admin.sock`);
  assert.equal(
    await socketDefault({ XDG_DATA_HOME: elsewhere }),
    `${elsewhere}/tessera/server/admin.sock`,
  );
  assert.equal(
    await socketDefault({ TESSERA_HOME: '/x', TESSERA_DATA_DIR: elsewhere }),
    `${elsewhere}/admin.sock`,
  );
  assert.equal(
    await socketDefault({ TESSERA_HOME: '/x', TESSERA_ADMIN_SOCKET: `${elsewhere}/a.sock` }),
    `${elsewhere}/a.sock`,
  );
});

test('a relative TESSERA_HOME is refused with its name', async () => {
  const r = await runCli(['entry', 'list'], { TESSERA_HOME: 'rel' });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'error: TESSERA_HOME must be an absolute path, got "rel"\n');
});
