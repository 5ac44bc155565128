// The lazily loaded command tree: the static table stays true to the command modules, help stays
// complete, and a command loads only its own group (checked by the modules a real process loads,
// not by timing).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildProgram, commandTable, invokedGroup, type CliIo } from './program.ts';
import { runCli } from './testing/harness.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function sink(): CliIo & { text(): string } {
  let out = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (out += s) },
    env: {},
    text: () => out,
  };
}

async function helpOf(load: Parameters<typeof buildProgram>[1]): Promise<string> {
  const io = sink();
  const program = await buildProgram(io, load);
  return program.helpInformation();
}

describe('command table', () => {
  test('the top-level help is the same with stubs as with every group loaded', async () => {
    const lazy = await helpOf(() => false);
    const eager = await helpOf(() => true);
    assert.equal(lazy, eager);
    for (const g of commandTable) assert.match(lazy, new RegExp(`^  ${g.name}\\b`, 'm'));
  });

  test('each group registers exactly the command the table names', async () => {
    for (const group of commandTable) {
      const program = await buildProgram(sink(), (g) => g === group);
      const cmd = program.commands.find((c) => c.name() === group.name);
      assert.ok(cmd, group.name);
      assert.equal(cmd.description(), group.description, group.name);
      assert.equal(program.commands.length, commandTable.length);
    }
  });

  test('invokedGroup finds the group past options and after `help`', () => {
    assert.equal(invokedGroup(['entry', 'list'])?.name, 'entry');
    assert.equal(invokedGroup(['--help', 'trust-policy'])?.name, 'trust-policy');
    assert.equal(invokedGroup(['help', 'issuer'])?.name, 'issuer');
    assert.equal(invokedGroup(['--version']), undefined);
    assert.equal(invokedGroup(['nope']), undefined);
  });
});

describe('help through the lazy tree', () => {
  test('`help entry` and `entry list --help` show the real subcommands and options', async () => {
    const h = await runCli(['help', 'entry']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^ {2}list \[options\] +list entries$/m);
    const l = await runCli(['entry', 'list', '--help']);
    assert.equal(l.code, 0);
    assert.match(l.stdout, /--page-size <n>/);
  });

  test('an unknown command still gets a suggestion; a usage error exits 2', async () => {
    const r = await runCli(['entyr', 'list']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'entyr'/);
    assert.match(r.stderr, /Did you mean entry\?/);
  });
});

/** Runs bin/tessera.mjs in a real process and returns the module URLs it loaded. */
function loadedModules(args: string[]): { code: number | null; stdout: string; urls: string[] } {
  const hook = [
    "import { registerHooks } from 'node:module';",
    'const seen = [];',
    'registerHooks({ load(url, ctx, next) { seen.push(url); return next(url, ctx); } });',
    "process.on('exit', () => process.stderr.write('\\nMODULES ' + JSON.stringify(seen) + '\\n'));",
  ].join('\n');
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, 'bin/tessera.mjs', ...args],
    {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, TESSERA_ADMIN_SOCKET: '/nonexistent/admin.sock' },
    },
  );
  const m = /^MODULES (.*)$/m.exec(r.stderr);
  assert.ok(m, r.stderr);
  return { code: r.status, stdout: r.stdout, urls: JSON.parse(m[1] ?? '[]') as string[] };
}

describe('what a command loads', () => {
  test('--version loads neither the command parser nor any client', () => {
    const r = loadedModules(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.deepEqual(
      r.urls.filter((u) => /commander|@connectrpc|@bufbuild|\/commands\//.test(u)),
      [],
    );
  });

  test('the top-level help loads no command module and no client', () => {
    const r = loadedModules(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /trust-policy/);
    assert.deepEqual(
      r.urls.filter((u) => /@connectrpc|@bufbuild|\/commands\//.test(u)),
      [],
    );
  });

  test('entry list loads the entry group only', () => {
    const r = loadedModules(['entry', 'list']);
    assert.equal(r.code, 6); // no server at the socket: unavailable
    const commands = r.urls.filter((u) => u.includes('/src/cli/commands/'));
    assert.ok(commands.some((u) => u.endsWith('/commands/entry.ts')));
    assert.deepEqual(
      // entry.ts and its own helpers (entry-fields.ts, ...), no other group's module.
      commands.filter((u) => !/\/commands\/entry(-[a-z-]+)?\.ts$/.test(u)),
      [],
    );
    assert.deepEqual(
      r.urls.filter((u) => /@peculiar|cel-js|\/src\/server\/|\/src\/agent\//.test(u)),
      [],
    );
  });
});

describe('the launcher (bin/tessera.mjs)', () => {
  test('runs without a usable cache directory: HOME in /proc, or no HOME at all', () => {
    for (const env of [{ HOME: '/proc/nonexistent' }, {}]) {
      const r = spawnSync(process.execPath, ['bin/tessera.mjs', '--version'], {
        cwd: REPO,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', ...env },
        timeout: 60_000, // a bound for a hang (Node's recursive mkdir under /proc), not a timing
      });
      assert.equal(r.status, 0, `${JSON.stringify(env)}: ${r.error?.message ?? r.stderr}`);
      assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    }
  });
});
