// The CLI snapshot (npm run build, scripts/build-cli.ts), black-box on a copy of the repository
// built by the test: the snapshot answers exactly as the sources do, bin/tessera uses it for its
// groups, and falls back to the sources when the build is stale or missing.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SNAPSHOT_GROUPS } from '../scripts/build-cli.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { REPO, startServer, type ServerProcess } from './helpers/server-process.ts';

const copy = mkdtempSync(path.join(os.tmpdir(), 'tessera-cli-build-'));
const blob = path.join(copy, 'build/cli/cli.blob');
let server: ServerProcess;
let env: NodeJS.ProcessEnv;

before(async () => {
  for (const f of ['bin', 'src', 'proto', 'scripts', 'package.json']) {
    cpSync(path.join(REPO, f), path.join(copy, f), { recursive: true });
  }
  symlinkSync(path.join(REPO, 'node_modules'), path.join(copy, 'node_modules'));
  const built = spawnSync(process.execPath, ['scripts/build-cli.ts'], {
    cwd: copy,
    encoding: 'utf8',
  });
  assert.equal(built.status, 0, built.stderr);
  server = await startServer();
  const { entries } = adminClients(server.adminSocket);
  const parent = 'spiffe://example.org/spire/agent/join_token/cli-build';
  await entries.batchCreateEntry({
    entries: [1, 2, 3].map((i) =>
      entry(`spiffe://example.org/cli/${i}`, parent, [`unix:uid:${i}`]),
    ),
  });
  env = { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket };
  delete env.NODE_DEBUG;
});

after(async () => {
  await server?.stop();
  rmSync(copy, { recursive: true, force: true });
});

type Run = SpawnSyncReturns<string>;
const fromSnapshot = (args: string[]): Run =>
  spawnSync(
    process.execPath,
    ['--snapshot-blob', blob, path.join(copy, 'bin/tessera.mjs'), ...args],
    {
      env,
      encoding: 'utf8',
    },
  );
const fromSources = (args: string[]): Run =>
  spawnSync(process.execPath, [path.join(copy, 'bin/tessera.mjs'), ...args], {
    env,
    encoding: 'utf8',
  });
/** bin/tessera as a user runs it; NODE_DEBUG=module,esm shows whether the sources were loaded. */
const launcher = (args: string[]): Run =>
  spawnSync(path.join(copy, 'bin/tessera'), args, {
    env: { ...env, NODE_DEBUG: 'module,esm' },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024, // the module debug log is long
  });
const loadedSources = (r: Run): boolean => r.stderr.includes('src/cli/program.ts');

test('the snapshot answers exactly as the sources do', () => {
  for (const args of [
    ['--version'],
    ['--help'],
    ['entry', 'list'],
    ['entry', 'list', '--output', 'json'],
    ['token', 'list', '--output', 'json'],
    ['entry', 'show', 'not-an-id'],
    ['entry', 'list', '--socket', path.join(copy, 'no.sock')],
  ]) {
    const [built, sources] = [fromSnapshot(args), fromSources(args)];
    const what = `tessera ${args.join(' ')}`;
    assert.equal(built.status, sources.status, `${what}: exit code\n${built.stderr}`);
    assert.equal(built.stdout, sources.stdout, `${what}: stdout`);
    assert.equal(built.stderr, sources.stderr, `${what}: stderr`);
  }
  const list = fromSnapshot(['entry', 'list']);
  assert.equal(list.status, 0, list.stderr);
  assert.equal(list.stdout.trimEnd().split('\n').length, 4, list.stdout); // header + 3 entries
});

test('bin/tessera runs its admin groups from a fresh snapshot', () => {
  const r = launcher(['entry', 'list']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, fromSources(['entry', 'list']).stdout);
  assert.equal(loadedSources(r), false, r.stderr);
  // Through a directory that links to bin/ (as the README test's checkout does).
  const elsewhere = path.join(copy, 'elsewhere');
  mkdirSync(elsewhere);
  symlinkSync(path.join(copy, 'bin'), path.join(elsewhere, 'bin'));
  const linked = spawnSync(path.join(elsewhere, 'bin/tessera'), ['entry', 'list'], {
    env: { ...env, NODE_DEBUG: 'module,esm' },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  assert.equal(linked.status, 0, linked.stderr);
  assert.equal(linked.stdout, r.stdout);
  assert.equal(loadedSources(linked), false);
  // Other groups are not in the snapshot: they start from the sources.
  assert.equal(loadedSources(launcher(['healthcheck', '--help'])), true);
});

test('bin/tessera sends the snapshot exactly the groups it holds', () => {
  const launcherText = readFileSync(path.join(REPO, 'bin/tessera'), 'utf8');
  const line = /^\s*(entry \|[^)]*)\)$/m.exec(launcherText)?.[1];
  assert.deepEqual(
    line?.split('|').map((g) => g.trim()),
    SNAPSHOT_GROUPS,
  );
});

test('an edited source makes bin/tessera run the sources, not the stale snapshot', () => {
  const file = path.join(copy, 'src/cli/commands/entry.ts');
  const text = readFileSync(file, 'utf8');
  assert.ok(text.includes("'list entries'"));
  writeFileSync(file, text.replace("'list entries'", "'list entries (edited)'"));
  const help = launcher(['entry', 'list', '--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /list entries \(edited\)/);
  assert.equal(loadedSources(help), true);
  const list = launcher(['entry', 'list']);
  assert.equal(list.status, 0, list.stderr);
  assert.equal(list.stdout, fromSources(['entry', 'list']).stdout);
});

test('without a build, bin/tessera runs the sources', () => {
  rmSync(path.join(copy, 'build'), { recursive: true, force: true });
  const list = launcher(['entry', 'list']);
  assert.equal(list.status, 0, list.stderr);
  assert.equal(loadedSources(list), true);
  assert.equal(list.stdout.trimEnd().split('\n').length, 4, list.stdout);
});
