// The checkpoint writer with its real sinks: the key file (created 0600, refused when readable by
// others), the append-only file (one fsynced line per moved head) and the HTTP sink (retries).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCheckpoints } from '../../core/audit-checkpoint.ts';
import { ManualClock } from '../../core/clock.ts';
import { T0, auditEvent } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { openCheckpointFile } from './checkpoint-file-sink.ts';
import { httpCheckpointSink } from './checkpoint-http-sink.ts';
import { loadOrCreateCheckpointKey } from './checkpoint-key.ts';
import { CheckpointWriter } from './checkpoint-writer.ts';

describe('CheckpointWriter', () => {
  let dir: string;
  let store: Store;
  const clock = new ManualClock(T0);
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-ckpt-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, clock);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the key 0600 once, and refuses one others can read', async () => {
    const file = path.join(dir, 'k1.key');
    const k = await loadOrCreateCheckpointKey(file);
    assert.equal(k.created, true);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = await loadOrCreateCheckpointKey(file);
    assert.equal(again.created, false);
    assert.equal(again.keyId, k.keyId);
    chmodSync(file, 0o644);
    await assert.rejects(loadOrCreateCheckpointKey(file), {
      name: 'FailedPreconditionError',
      message: `audit checkpoint key ${file}: mode 644 lets others read it; chmod 600`,
    });
  });

  it('appends a signed line when the head moved, and always when asked (shutdown)', async () => {
    const key = await loadOrCreateCheckpointKey(path.join(dir, 'k2.key'));
    const file = path.join(dir, 'checkpoints.jsonl');
    const w = new CheckpointWriter({
      audit: store.audit,
      clock,
      key,
      trustDomain: 'example.org',
      serverId: 's1',
      sink: await openCheckpointFile(file),
    });
    assert.equal((await w.checkpoint())?.seq, 0);
    assert.equal(await w.checkpoint(), null, 'unchanged head: nothing written');
    await store.audit.appendMany([auditEvent(1), auditEvent(2)]);
    const c = await w.checkpoint();
    assert.deepEqual({ seq: c?.seq, hash: c?.hash }, await store.audit.head());
    clock.advance(1000);
    assert.equal((await w.checkpoint(true))?.seq, 2);
    await w.close();
    const parsed = parseCheckpoints(readFileSync(file, 'utf8'), key.publicKey);
    assert.deepEqual(
      parsed.map((p) => [p.seq, p.time]),
      [
        [0, T0],
        [2, T0],
        [2, T0 + 1000],
      ],
    );
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('POSTs to an HTTP collector, retrying a failure, and fails after the bounded attempts', async () => {
    const key = await loadOrCreateCheckpointKey(path.join(dir, 'k3.key'));
    const bodies: string[] = [];
    let n = 0;
    let failAll = false;
    const srv = http.createServer((req, res) => {
      let b = '';
      req.on('data', (d: Buffer) => (b += d.toString()));
      req.on('end', () => {
        n++;
        if (failAll || n === 1) return void res.writeHead(500).end();
        bodies.push(b);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/c`;
    try {
      const w = new CheckpointWriter({
        audit: store.audit,
        clock,
        key,
        trustDomain: 'example.org',
        serverId: 's1',
        sink: httpCheckpointSink({ url, timeoutMs: 2000, attempts: 3 }),
      });
      await w.checkpoint();
      assert.equal(n, 2);
      assert.equal(parseCheckpoints(bodies[0] + '\n', key.publicKey)[0]?.seq, 2);
      failAll = true;
      await assert.rejects(w.checkpoint(true), {
        name: 'UnavailableError',
        message: `POST ${url}: HTTP 500 (after 3 attempts)`,
      });
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
