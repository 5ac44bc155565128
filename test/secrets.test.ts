// Black-box: the encrypted secret store through the real server and CLI. Values are write-only,
// never reach the disk, logs or audit in the clear; 64 KiB + 1 is refused; a missing or wrong
// KEK file stops the start naming the file; kill -9 during `secret rotate` and during KEK
// rotation leaves every secret at exactly its old or its new value. Plaintext is read back from
// the test process (store + KEK manager) after the server stopped: no API returns a value.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { SecretService } from '../proto/gen/tessera/v1/secret_pb.js';
import { adminSocketTransport } from '../src/client/server-transport.ts';
import { dataKeyAad, openValue } from '../src/crypto/secrets/envelope.ts';
import { DiskKekManager } from '../src/plugins/kek-managers/catalog.ts';
import { openStore } from '../src/store/open.ts';
import { runCli } from './helpers/cli-process.ts';
import { CLI } from './helpers/server-process.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

const servers: ServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.kill();
});

/** `tessera ...` with `input` on standard input. */
function cliWithInput(args: string[], input: Buffer) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {}); // the CLI may stop reading once the input is too large
  child.stdin.end(input);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? allFiles(p) : d.isFile() ? [p] : [];
  });
}

/** Every secret's current plaintext, read from the datastore with the KEK files, server stopped. */
async function readAll(server: ServerProcess): Promise<Map<string, string>> {
  const store = await openStore({
    kind: 'sqlite',
    path: path.join(server.dataDir, 'datastore.sqlite3'),
  });
  try {
    const kek = await DiskKekManager.create(path.join(server.dataDir, 'secrets'));
    const out = new Map<string, string>();
    for (const s of await store.secrets.list(100_000)) {
      const v = await store.secrets.current(s.name);
      assert.ok(v, `secret ${s.name} has no current version row`);
      const dek = await kek.unwrap(v.kekId, v.wrappedKey, dataKeyAad(v, v.kekId));
      out.set(s.name, Buffer.from(openValue(v, dek, v)).toString());
    }
    const keks = await store.secrets.listKeks();
    assert.deepEqual(
      keks.map((k) => k.state),
      ['active'],
      'one active KEK after the start',
    );
    assert.deepEqual(
      readdirSync(path.join(server.dataDir, 'secrets')).filter((f) => !f.startsWith('.')),
      [`kek-${keks[0]?.id}.key`],
      'exactly the active KEK file',
    );
    return out;
  } finally {
    await store.close();
  }
}

describe('tessera secret (real server and CLI)', () => {
  it('put/list/show/rotate/delete; 64 KiB + 1 refused; no plaintext on disk, in logs or audit', async () => {
    const server = await startServer({ config: { log_level: 'debug' } });
    servers.push(server);
    const sock = ['--socket', server.adminSocket];
    const known = `tessera-known-plaintext-${randomBytes(8).toString('hex')}`;
    const file = path.join(server.dataDir, '..', `value-${randomBytes(4).toString('hex')}`);
    writeFileSync(file, known);

    const put = await runCli(['secret', 'put', 'db-password', '--from-file', file, ...sock]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout, `secret db-password stored: version 1 (${known.length} bytes)\n`);
    const viaStdin = await cliWithInput(
      ['secret', 'put', 'api-key', '--from-stdin', ...sock],
      Buffer.from(known + '-2'),
    );
    assert.equal(viaStdin.code, 0, viaStdin.stderr);

    const rot = await runCli(['secret', 'rotate', 'db-password', ...sock, '--output', 'json']);
    assert.equal(rot.code, 0, rot.stderr);
    assert.equal((JSON.parse(rot.stdout) as { currentVersion: number }).currentVersion, 2);

    const show = await runCli(['secret', 'show', 'db-password', ...sock, '--output', 'json']);
    assert.equal(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout) as {
      name: string;
      currentVersion: number;
      versions: { version: number; size: number; kekId: string }[];
    };
    assert.equal(shown.name, 'db-password');
    assert.deepEqual(
      shown.versions.map((v) => [v.version, v.size]),
      [
        [1, known.length],
        [2, known.length],
      ],
    );
    assert.match(shown.versions[0]?.kekId ?? '', /^[0-9a-f]{16}$/);
    const table = await runCli(['secret', 'show', 'db-password', ...sock]);
    assert.match(table.stdout, /^Name: +db-password$/m);

    const list = await runCli(['secret', 'list', ...sock, '--output', 'json']);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { secrets: { name: string }[] }).secrets.map((s) => s.name),
      ['api-key', 'db-password'],
    );

    // 64 KiB + 1: refused by the CLI (file and stdin) and by the server (API); nothing stored.
    const big = path.join(server.dataDir, '..', `big-${randomBytes(4).toString('hex')}`);
    writeFileSync(big, Buffer.alloc(64 * 1024 + 1, 0x61));
    const tooBig = await runCli(['secret', 'put', 'big', '--from-file', big, ...sock]);
    assert.equal(tooBig.code, 2, tooBig.stderr);
    assert.equal(
      tooBig.stderr,
      `error: --from-file: ${big} is larger than 64 KiB (65536 bytes), the limit of a secret; nothing was stored\n`,
    );
    const tooBigStdin = await cliWithInput(
      ['secret', 'put', 'big', '--from-stdin', ...sock],
      Buffer.alloc(64 * 1024 + 1, 0x61),
    );
    assert.equal(tooBigStdin.code, 2, tooBigStdin.stderr);
    assert.match(tooBigStdin.stderr, /--from-stdin: standard input is larger than 64 KiB/);
    const api = createClient(SecretService, adminSocketTransport(server.adminSocket));
    await assert.rejects(
      api.putSecret({ name: 'big', value: new Uint8Array(64 * 1024 + 1) }),
      /secret value: 65537 bytes, larger than the limit of 65536 bytes \(64 KiB\)/,
    );
    const none = await runCli(['secret', 'show', 'big', ...sock]);
    assert.equal(none.code, 3, none.stderr);
    assert.equal(none.stderr, 'error: secret "big" not found\n');
    const badName = await runCli(['secret', 'put', 'Bad/Name', '--from-file', file, ...sock]);
    assert.equal(badName.code, 2, badName.stderr);

    const del = await runCli(['secret', 'delete', 'api-key', ...sock]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'secret api-key deleted\n');

    const kekRot = await runCli(['secret', 'rotate-kek', ...sock, '--output', 'json']);
    assert.equal(kekRot.code, 0, kekRot.stderr);
    assert.equal((JSON.parse(kekRot.stdout) as { rewrapped: number }).rewrapped, 2);

    const audit = await runCli(['audit', 'list', ...sock, '--output', 'json']);
    assert.equal(audit.code, 0, audit.stderr);
    for (const a of ['secret.put', 'secret.rotate', 'secret.delete', 'secret.kek.rotate']) {
      assert.ok(audit.stdout.includes(`"${a}"`), `audit has ${a}`);
    }
    const needles = [known, Buffer.from(known).toString('base64'), 'tessera-known-plaintext'];
    const check = (where: string, text: string | Buffer) => {
      for (const n of needles) assert.ok(!text.includes(n), `${where} holds the plaintext (${n})`);
    };
    check('audit list', audit.stdout);
    check('the CLI output', put.stdout + put.stderr + show.stdout + table.stdout + list.stdout);
    const dataFiles = () => allFiles(server.dataDir).filter((f) => f !== file);
    for (const f of dataFiles()) check(f, readFileSync(f));
    assert.equal(statSync(path.join(server.dataDir, 'secrets')).mode & 0o777, 0o700);
    await server.stop();
    check('the server log', server.output());
    for (const f of dataFiles()) check(f, readFileSync(f));
    assert.ok(
      allFiles(server.dataDir).some((f) => f.endsWith('datastore.sqlite3')),
      'the datastore was searched',
    );
    const values = await readAll(server);
    assert.equal(values.get('db-password'), known);
  });

  it('a missing or wrong KEK file: the server refuses to start, naming the file', async () => {
    const server = await startServer();
    servers.push(server);
    const r = await runCli(['secret', 'put', 's', '--from-stdin', '--socket', server.adminSocket]);
    assert.equal(r.code, 2); // stdin is empty ('ignore'): refused, nothing stored
    const api = createClient(SecretService, adminSocketTransport(server.adminSocket));
    await api.putSecret({ name: 's', value: new Uint8Array(Buffer.from('v')) });
    await server.stop();
    const dir = path.join(server.dataDir, 'secrets');
    const [name] = readdirSync(dir).filter((f) => f.endsWith('.key'));
    const kekFile = path.join(dir, name ?? '');
    const run = () =>
      runCli(['server', 'run', '--config', path.join(server.dataDir, 'server.yaml')], {
        deadlineMs: 120_000,
      });

    renameSync(kekFile, kekFile + '.away');
    const missing = await run();
    assert.equal(missing.code, 7, missing.stderr);
    assert.ok(
      missing.stderr.includes(
        `error: secret store: key-encryption key file ${kekFile} is missing: restore it from a backup of the data directory`,
      ),
      missing.stderr,
    );

    writeFileSync(kekFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    const wrong = await run();
    assert.equal(wrong.code, 7, wrong.stderr);
    assert.ok(
      wrong.stderr.includes(
        `error: secret store: key-encryption key file ${kekFile} does not hold KEK`,
      ),
      wrong.stderr,
    );

    renameSync(kekFile + '.away', kekFile);
    // What an interrupted KEK write leaves (removed at start), and look-alikes (kept).
    const orphan = path.join(dir, `.${name}.tmp-0123456789ab`);
    const kept = [
      path.join(dir, `.${name}.tmp-0123456789AB`),
      path.join(dir, `.other.tmp-0123456789ab`),
    ];
    for (const f of [orphan, ...kept]) writeFileSync(f, 'x', { mode: 0o600 });
    await server.restart();
    assert.equal(existsSync(orphan), false, 'the temp file of an interrupted KEK write is removed');
    for (const f of kept) assert.equal(existsSync(f), true, `${f} kept`);
    await server.stop();
    for (const f of kept) rmSync(f);
    assert.equal((await readAll(server)).get('s'), 'v');
  });

  it('kill -9 during `secret rotate` of many secrets: each reads exactly old or new', async () => {
    const N = 40;
    const server = await startServer();
    servers.push(server);
    const value = (round: number, i: number) => `round-${round}-secret-${i}`;
    let api = createClient(SecretService, adminSocketTransport(server.adminSocket));
    for (let i = 0; i < N; i++) {
      await api.putSecret({ name: `s${i}`, value: new Uint8Array(Buffer.from(value(0, i))) });
    }
    const expected = new Map<number, Set<string>>();
    for (let i = 0; i < N; i++) expected.set(i, new Set([value(0, i)]));
    const acked = new Map<number, string>();
    for (let round = 1; round <= 3; round++) {
      let done = 0;
      const rotations = Array.from({ length: N }, async (_, i) => {
        expected.get(i)?.add(value(round, i));
        try {
          await api.rotateSecret({
            name: `s${i}`,
            // Every other secret: rotated to the same value under a fresh data key.
            ...(i % 2 === 0 ? { value: new Uint8Array(Buffer.from(value(round, i))) } : {}),
          });
          if (i % 2 === 0) acked.set(i, value(round, i));
          done++;
        } catch {
          // the server is gone
        }
      });
      // Kill at a different moment each round: after 1, then N/3, then 2N/3 acknowledged.
      const killAfter = [1, Math.floor(N / 3), Math.floor((2 * N) / 3)][round - 1] ?? 1;
      for (let t = 0; t < 6000 && done < killAfter; t++) await new Promise((r) => setTimeout(r, 5));
      await server.kill();
      await Promise.all(rotations);
      await server.restart();
      api = createClient(SecretService, adminSocketTransport(server.adminSocket));
      // Odd secrets were rotated to their current value: that stays the round-0 value.
      for (let i = 1; i < N; i += 2) expected.set(i, new Set([value(0, i)]));
    }
    await server.stop();
    const values = await readAll(server);
    for (let i = 0; i < N; i++) {
      const got = values.get(`s${i}`);
      assert.ok(got !== undefined && expected.get(i)?.has(got), `s${i} reads ${got}`);
      const ack = acked.get(i);
      if (ack !== undefined) {
        const round = (s: string) => Number(s.split('-')[1]);
        assert.ok(round(got) >= round(ack), `s${i}: acknowledged ${ack}, reads ${got}`);
      }
    }
  });

  it('kill -9 during KEK rotation: the next start finishes it; every secret reads', async (t) => {
    const N = 150;
    const server = await startServer();
    servers.push(server);
    let api = createClient(SecretService, adminSocketTransport(server.adminSocket));
    for (let i = 0; i < N; i++) {
      await api.putSecret({ name: `k${i}`, value: new Uint8Array(Buffer.from(`kek-test-${i}`)) });
    }
    for (const delayMs of [0, 40, 150]) {
      const rotation = api.rotateKeyEncryptionKey({}).catch(() => null);
      await new Promise((r) => setTimeout(r, delayMs));
      await server.kill();
      await rotation;
      await server.restart();
      api = createClient(SecretService, adminSocketTransport(server.adminSocket));
    }
    // And one that runs to its end after the crashes.
    const last = await api.rotateKeyEncryptionKey({});
    assert.equal(last.rewrapped, N);
    await server.stop();
    const values = await readAll(server);
    assert.equal(values.size, N);
    // Which crashes hit a rotation midway depends on timing; say how many were finished at start.
    const store = await openStore({
      kind: 'sqlite',
      path: path.join(server.dataDir, 'datastore.sqlite3'),
    });
    const rotations = await store.audit.list({ action: 'secret.kek.rotate' }, 100);
    await store.close();
    const resumed = rotations.filter((r) => (r.details as { resumed?: boolean }).resumed).length;
    t.diagnostic(
      `${rotations.length} KEK rotations completed, ${resumed} of them resumed at start`,
    );
    for (let i = 0; i < N; i++) assert.equal(values.get(`k${i}`), `kek-test-${i}`);
  });
});
