// The export sinks against real receivers: a TCP syslog server reading RFC 6587 octet-counted
// RFC 5424 frames, an HTTP webhook checking the HMAC (503 first, then down, then back), and the
// JSON-lines file rotating by size. Records come from the real SQLite store through the exporter.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditHash, GENESIS_HASH } from '../../core/audit.ts';
import { ManualClock } from '../../core/clock.ts';
import { T0 } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { makeTlsFiles } from '../../../test/helpers/https.ts';
import { waitFor } from '../../../test/helpers/ports.ts';
import type { RequestContext } from '../../core/caller.ts';
import { Auditor } from './auditor.ts';
import { cursorFile } from './export-cursor.ts';
import type { ExportSink, ExportedRecord } from './export-record.ts';
import { AuditExporter } from './exporter.ts';
import { openFileSink } from './file-sink.ts';
import { syslogSink } from './syslog-sink.ts';
import { SIGNATURE_HEADER, webhookSink } from './webhook-sink.ts';

const ctx: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'c1' };

let dir: string;
let store: Store;
let auditor: Auditor;
const stops: (() => Promise<void>)[] = [];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-sinks-'));
  const clock = new ManualClock(T0);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, clock);
  auditor = new Auditor(clock, store);
});
after(async () => {
  for (const s of stops.reverse()) await s();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function logMany(n: number): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      auditor.log(ctx, {
        action: 'entry.create',
        target: `e${i}`,
        outcome: i % 5 === 0 ? 'denied' : 'success',
        details: { n: i, token: 'secret-value' },
      }),
    ),
  );
}

function startExporter(name: string, sink: ExportSink, o: { batchSize?: number } = {}) {
  const stats = { delivered: 0, failed: 0, lag: 0, errors: [] as string[] };
  const ac = new AbortController();
  const done = new AuditExporter({
    name,
    sink,
    audit: store.audit,
    cursor: cursorFile(path.join(dir, `${name}.cursor`)),
    trustDomain: 'example.org',
    start: 'beginning',
    batchSize: o.batchSize ?? 50,
    pollMs: 50,
    maxBackoffMs: 200,
    onAppend: (l) => auditor.onAppend(l),
    log: { info: () => {}, error: (f) => stats.errors.push(JSON.stringify(f)) },
    metrics: {
      delivered: (n) => (stats.delivered += n),
      failed: () => stats.failed++,
      lag: (n) => (stats.lag = n),
    },
  }).run(ac.signal);
  stops.push(async () => {
    ac.abort();
    await done;
  });
  return stats;
}

/** Every record 1..head arrived (duplicates allowed), each hash recomputes and chains. */
async function assertContinuous(received: ExportedRecord[]): Promise<void> {
  const bySeq = new Map(received.map((r) => [r.seq, r]));
  const head = await store.audit.head();
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= head.seq; seq++) {
    const r = bySeq.get(seq);
    assert.ok(r, `record ${seq} delivered`);
    assert.equal(r.prevHash, prev);
    assert.equal(auditHash(r.seq, r.prevHash, r as never), r.hash, `hash of ${seq}`);
    assert.equal(r.trustDomain, 'example.org');
    assert.equal(JSON.stringify(r).includes('secret-value'), false, 'secrets stay redacted');
    prev = r.hash;
  }
}

async function allDelivered(received: () => ExportedRecord[]): Promise<void> {
  await waitFor(async () => {
    const head = await store.audit.head();
    return new Set(received().map((r) => r.seq)).size >= head.seq;
  }, 30_000);
}

describe('syslog sink', () => {
  it('sends RFC 5424 messages with octet-counting framing over TCP', async () => {
    const frames: string[] = [];
    let buf = Buffer.alloc(0);
    const srv = net.createServer((sock) => {
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const sp = buf.indexOf(0x20);
          if (sp < 0) break;
          const len = Number(buf.subarray(0, sp).toString());
          assert.ok(Number.isInteger(len) && len > 0, 'frame starts with its octet count');
          if (buf.length < sp + 1 + len) break;
          frames.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
          buf = buf.subarray(sp + 1 + len);
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => srv.close(() => r())));
    const port = (srv.address() as net.AddressInfo).port;
    await logMany(12);
    startExporter(
      'syslog',
      syslogSink({
        host: '127.0.0.1',
        port,
        facility: 10,
        appName: 'tessera',
        connectTimeoutMs: 5000,
      }),
      { batchSize: 5 },
    );
    const parsed = () =>
      frames.map((f) => {
        const m =
          /^<(\d+)>1 (\d{4}-\d\d-\d\dT[\d:.]+Z) (\S+) tessera (\d+) (\S+) \[tessera@32473 seq="(\d+)" hash="([0-9a-f]{64})" prevHash="([0-9a-f]{64})" outcome="(\w+)"\] \uFEFF(.*)$/s.exec(
            f,
          );
        assert.ok(m, `RFC 5424 frame: ${f.slice(0, 200)}`);
        const rec = JSON.parse(m[10] as string) as ExportedRecord;
        assert.equal(Number(m[6]), rec.seq);
        assert.equal(m[7], rec.hash);
        assert.equal(m[5], rec.action);
        // authpriv (10) * 8 + info (6) or warning (4) for a denial
        assert.equal(Number(m[1]), rec.outcome === 'denied' ? 84 : 86);
        return rec;
      });
    await allDelivered(() => (frames.length > 0 ? parsed() : []));
    await assertContinuous(parsed());
  });

  it('speaks TLS to a receiver whose certificate chains to the CA file', async () => {
    const tlsDir = mkdtempSync(path.join(os.tmpdir(), 'tessera-syslog-tls-'));
    stops.push(async () => rmSync(tlsDir, { recursive: true, force: true }));
    const { caPem, certFile, keyFile } = makeTlsFiles(tlsDir);
    let text = '';
    const srv = tls.createServer(
      { cert: readFileSync(certFile), key: readFileSync(keyFile) },
      (sock) => sock.on('data', (d: Buffer) => (text += d.toString('utf8'))),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => srv.close(() => r())));
    const port = (srv.address() as net.AddressInfo).port;
    await logMany(2);
    const head = await store.audit.head();
    startExporter(
      'syslog-tls',
      syslogSink({
        host: '127.0.0.1',
        port,
        tls: { ca: caPem, serverName: '127.0.0.1' },
        facility: 4,
        appName: 'tessera',
        connectTimeoutMs: 5000,
      }),
    );
    await waitFor(() => text.includes(`seq="${head.seq}"`), 30_000);
    assert.match(text, /^\d+ <3[68]>1 /);

    // A receiver with a certificate from another CA is refused: nothing is sent to it.
    const other = mkdtempSync(path.join(os.tmpdir(), 'tessera-syslog-tls-'));
    stops.push(async () => rmSync(other, { recursive: true, force: true }));
    const stats = startExporter(
      'syslog-tls-wrong-ca',
      syslogSink({
        host: '127.0.0.1',
        port,
        tls: { ca: makeTlsFiles(other).caPem, serverName: '127.0.0.1' },
        facility: 4,
        appName: 'tessera',
        connectTimeoutMs: 5000,
      }),
    );
    await waitFor(() => stats.failed > 0, 30_000);
    assert.equal(stats.delivered, 0);
  });
});

describe('webhook sink', () => {
  it('signs the body, retries after a 503, and catches up after being down', async () => {
    const secret = Buffer.from('0123456789abcdef-webhook-secret');
    const received: ExportedRecord[] = [];
    let requests = 0;
    let badSignatures = 0;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests++;
        const body = Buffer.concat(chunks);
        const want = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
        if (req.headers[SIGNATURE_HEADER] !== want) {
          badSignatures++;
          res.writeHead(401).end();
          return;
        }
        if (requests === 1) {
          res.writeHead(503).end();
          return;
        }
        received.push(...(JSON.parse(body.toString()) as { records: ExportedRecord[] }).records);
        res.writeHead(204).end();
      });
    };
    let srv = http.createServer(handler);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await logMany(7);
    const stats = startExporter(
      'webhook',
      webhookSink({ url: `http://127.0.0.1:${port}/audit`, secret, timeoutMs: 2000, attempts: 3 }),
      { batchSize: 4 },
    );
    await allDelivered(() => received);
    assert.equal(badSignatures, 0);
    assert.ok(requests >= 3, 'the 503 was retried');
    assert.equal(received[0]?.seq, 1, 'the refused batch was sent again, from its first record');

    // Down: records written meanwhile wait in the database; the failures are counted and logged.
    await new Promise<void>((r) => srv.close(() => r()));
    const failedBefore = stats.failed;
    await logMany(9);
    await waitFor(() => stats.failed > failedBefore, 30_000);
    assert.ok(stats.lag >= 1, 'the lag is reported');
    assert.match(stats.errors.at(-1) ?? '', /"sink":"webhook"/);
    srv = http.createServer(handler);
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    stops.push(() => new Promise((r) => srv.close(() => r())));
    await allDelivered(() => received);
    await assertContinuous(received);
  });
});

describe('file sink', () => {
  it('writes JSON lines and rotates by size, keeping N files', async () => {
    const file = path.join(dir, 'export', 'audit.jsonl');
    (await import('node:fs')).mkdirSync(path.dirname(file));
    await logMany(40);
    startExporter(
      'file',
      await openFileSink({
        path: file,
        maxBytes: 4096,
        keep: 2,
        fsync: 'always',
        fsyncIntervalMs: 1000,
      }),
      { batchSize: 7 },
    );
    const read = () =>
      ['.2', '.1', '']
        .map((s) => file + s)
        .filter((f) => {
          try {
            statSync(f);
            return true;
          } catch {
            return false;
          }
        })
        .flatMap((f) =>
          readFileSync(f, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as ExportedRecord),
        );
    const head = await store.audit.head();
    await waitFor(() => read().at(-1)?.seq === head.seq, 30_000);
    assert.deepEqual(readdirSync(path.dirname(file)).sort(), [
      'audit.jsonl',
      'audit.jsonl.1',
      'audit.jsonl.2',
    ]);
    for (const s of ['', '.1', '.2'])
      assert.ok(statSync(file + s).size <= 4096, `${s} within max_bytes`);
    // The kept files hold the newest records, in order, without a gap.
    const seqs = read().map((r) => r.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => head.seq - seqs.length + 1 + i),
    );
    assert.ok(seqs.length < head.seq, 'older files were removed');
  });
});
