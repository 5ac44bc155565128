// Crash safety: a writer killed with SIGKILL mid-stream loses no acknowledged commit and leaves a
// consistent database (WAL + synchronous=NORMAL is durable against process crashes).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyChain } from '../../core/audit.ts';
import { openStore } from '../open.ts';
import { entryId } from '../conformance/fixtures.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-crash-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const here = path.dirname(fileURLToPath(import.meta.url));

/** Child: entry + audit record per transaction, printing each index once committed. */
const writer = (file: string) => `
  import { openStore } from ${JSON.stringify(path.join(here, '../open.ts'))};
  import { makeEntry, auditEvent } from ${JSON.stringify(path.join(here, '../conformance/fixtures.ts'))};
  const store = await openStore({ kind: 'sqlite', path: ${JSON.stringify(file)} });
  for (let i = 0; ; i++) {
    await store.transaction(async (tx) => {
      await tx.entries.create(makeEntry(i));
      await tx.audit.append(auditEvent(i));
    });
    process.stdout.write(i + '\\n');
  }
`;

it('SIGKILL during writes loses no acknowledged commit and keeps the audit chain intact', async () => {
  const file = path.join(dir, 'crash.db');
  const child = spawn(process.execPath, ['--input-type=module', '-e', writer(file)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let acked = -1;
  await new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`writer exited early (${code})`)));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const last = chunk.trim().split('\n').at(-1);
      if (last !== undefined && last !== '') acked = Number(last);
      if (acked >= 300 && !child.killed) {
        child.removeAllListeners('exit');
        child.on('exit', () => resolve());
        child.kill('SIGKILL');
      }
    });
  });
  const store = await openStore({ kind: 'sqlite', path: file });
  try {
    const count = await store.entries.count();
    assert.ok(count >= acked + 1, `${count} entries, ${acked + 1} acknowledged`);
    assert.notEqual(await store.entries.get(entryId(acked)), null);
    const records = await store.audit.list({}, 100_000);
    assert.equal(records.length, count, 'entry and audit record commit together');
    assert.equal(verifyChain(records).ok, true);
  } finally {
    await store.close();
  }
});
