import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkFile, layerOf } from '../scripts/check-boundaries.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

before(() => {
  // checkFile resolves layers relative to the working directory, as the script does.
  process.chdir(root);
});

describe('layerOf', () => {
  it('maps files to layers', () => {
    assert.equal(layerOf('src/core/entry.ts'), 'core');
    assert.equal(layerOf('src/server/index/entry-index.ts'), 'server');
    assert.equal(layerOf('src/plugins/node-attestors/catalog.ts'), 'plugins');
    assert.equal(layerOf('proto/gen/tessera/v1/agent_pb.js'), 'proto');
    assert.equal(layerOf('scripts/check-boundaries.ts'), undefined);
    assert.equal(layerOf('src/unknown/x.ts'), undefined);
  });
});

describe('checkFile: the pure core', () => {
  it('flags I/O modules', () => {
    assert.deepEqual(checkFile('src/core/x.ts', "import { readFileSync } from 'node:fs';\n"), [
      'src/core/x.ts: core may not import node:fs (only node:crypto, node:buffer, node:util)',
    ]);
    assert.deepEqual(checkFile('src/core/x.ts', "const net = await import('node:net');\n"), [
      'src/core/x.ts: core may not import node:net (only node:crypto, node:buffer, node:util)',
    ]);
    assert.deepEqual(checkFile('src/core/x.ts', "import 'node:child_process';\n"), [
      'src/core/x.ts: core may not import node:child_process (only node:crypto, node:buffer, node:util)',
    ]);
  });

  it('allows computing with node:crypto, node:buffer and node:util', () => {
    const text = [
      "import { createHash } from 'node:crypto';",
      "import { Buffer } from 'node:buffer';",
      "import { inspect } from 'node:util';",
      "import { InvalidArgumentError } from './errors.ts';",
    ].join('\n');
    assert.deepEqual(checkFile('src/core/x.ts', text), []);
  });

  it('flags ambient state: Date.now(), new Date(), process. and Math.random()', () => {
    assert.deepEqual(checkFile('src/core/x.ts', 'export const t = Date.now();\n'), [
      'src/core/x.ts: core may not use Date.now() (inject a Clock)',
    ]);
    assert.deepEqual(checkFile('src/core/x.ts', 'export const t = new Date();\n'), [
      'src/core/x.ts: core may not use new Date() (inject a Clock)',
    ]);
    assert.deepEqual(checkFile('src/core/x.ts', 'export const e = process.env.HOME;\n'), [
      'src/core/x.ts: core may not use process (ambient state)',
    ]);
    assert.deepEqual(checkFile('src/core/x.ts', 'export const r = Math.random();\n'), [
      'src/core/x.ts: core may not use Math.random() (inject randomness)',
    ]);
    // Converting a given timestamp is not ambient state.
    assert.deepEqual(
      checkFile('src/core/x.ts', 'export const d = (ms: number) => new Date(ms);\n'),
      [],
    );
  });

  it('lets core tests use I/O and ambient state', () => {
    const text = "import { mkdtemp } from 'node:fs/promises';\nconst t = Date.now();\n";
    assert.deepEqual(checkFile('src/core/x.test.ts', text), []);
  });

  // Known gap (scripts/ is outside this test author's area): only "node:"-prefixed specifiers
  // are checked, so `from 'fs'` or an npm driver slips into the core. Fix: use isBuiltin() from
  // node:module and deny non-relative specifiers other than the allowed ones.
  it('flags bare builtin names and packages in core', () => {
    assert.notDeepEqual(checkFile('src/core/x.ts', "import { z } from 'zod';\n"), []);
    assert.notDeepEqual(checkFile('src/core/x.ts', "import fs from 'fs';\n"), []);
  });
});

describe('checkFile: layer imports', () => {
  it('flags crypto importing the store', () => {
    assert.deepEqual(
      checkFile('src/crypto/x509/x.ts', "import type { Store } from '../../store/types.ts';\n"),
      ["src/crypto/x509/x.ts: layer 'crypto' may not import 'store' (../../store/types.ts)"],
    );
  });

  it('flags agent importing the server', () => {
    assert.deepEqual(
      checkFile('src/agent/x.ts', "export { Minter } from '../server/svid/minter.ts';\n"),
      ["src/agent/x.ts: layer 'agent' may not import 'server' (../server/svid/minter.ts)"],
    );
  });

  it('flags the CLI importing server internals, but allows the server composition root', () => {
    assert.deepEqual(
      checkFile(
        'src/cli/commands/x.ts',
        "import { compileServerConfig } from '../../server/config/compile.ts';\n",
      ),
      [
        "src/cli/commands/x.ts: layer 'cli' may not import 'server' (../../server/config/compile.ts)",
      ],
    );
    assert.deepEqual(
      checkFile('src/cli/commands/x.ts', "import { runServer } from '../../server/compose.ts';\n"),
      [],
    );
    assert.deepEqual(
      checkFile('src/cli/x.ts', "const m = await import('../server/compose.ts');\n"),
      [],
    );
  });

  it('flags every offending import of a multi-line file, in order', () => {
    const text = [
      'import {',
      '  a,',
      '  b,',
      "} from '../server/x.ts';",
      "import { c } from '../core/c.ts';",
      "export * from '../store/y.ts';",
    ].join('\n');
    assert.deepEqual(checkFile('src/crypto/x.ts', text), [
      "src/crypto/x.ts: layer 'crypto' may not import 'server' (../server/x.ts)",
      "src/crypto/x.ts: layer 'crypto' may not import 'store' (../store/y.ts)",
    ]);
  });

  it('allows the inward directions', () => {
    const cases: Array<[string, string]> = [
      ['src/server/x.ts', '../store/types.ts'],
      ['src/server/x.ts', '../plugins/node-attestors/catalog.ts'],
      ['src/plugins/x/y.ts', '../../crypto/x509/ca.ts'],
      ['src/store/x.ts', '../core/entry.ts'],
      ['src/agent/x.ts', '../client/server-transport.ts'],
      ['src/cli/x.ts', '../client/server-transport.ts'],
      ['src/server/api/x.ts', '../../../proto/gen/tessera/v1/agent_pb.js'],
    ];
    for (const [file, spec] of cases) {
      assert.deepEqual(checkFile(file, `import { x } from '${spec}';\n`), [], `${file} → ${spec}`);
    }
  });

  it('lets tests beside the code use lower layers, but never the CLI', () => {
    assert.deepEqual(
      checkFile('src/crypto/x.test.ts', "import { openStore } from '../store/open.ts';\n"),
      [],
    );
    assert.deepEqual(
      checkFile('src/server/x.test.ts', "import { main } from '../cli/main.ts';\n"),
      ["src/server/x.test.ts: layer 'server' may not import 'cli' (../cli/main.ts)"],
    );
  });

  it('ignores files outside the layers', () => {
    assert.deepEqual(checkFile('scripts/x.ts', "import '../src/server/compose.ts';\n"), []);
    assert.deepEqual(checkFile('proto/gen/x.js', "import '../../src/server/compose.ts';\n"), []);
  });
});

describe('the current tree', () => {
  it('passes the boundary check', () => {
    const r = spawnSync(
      path.join(root, 'node_modules/.bin/node'),
      [path.join(root, 'scripts/check-boundaries.ts')],
      { cwd: root, encoding: 'utf8' },
    );
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^boundaries ok \(\d+ files\)\n$/);
  });
});
