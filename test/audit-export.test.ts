// Black-box: a real server exports its audit log to a webhook and a syslog receiver (both run
// by the test) and to a rotating file; the webhook is down across a server restart and still
// gets every record afterwards, because each sink resumes from its cursor in the data dir.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { adminClients } from './helpers/admin.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { type ServerProcess, startServer } from './helpers/server-process.ts';

interface Rec {
  seq: number;
  hash: string;
  prevHash: string;
  action: string;
}

describe('audit export (real server)', () => {
  let server: ServerProcess;
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    await server?.stop();
    for (const c of closers) await c();
  });

  it('delivers every record, with seq and hash, to webhook, syslog and file; catches up after an outage', async () => {
    const secret = 'a-webhook-secret-of-enough-bytes';
    const hooked = new Map<number, Rec>();
    let badSig = 0;
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
        if (req.headers['x-tessera-signature'] !== sig) {
          badSig++;
          res.writeHead(401).end();
          return;
        }
        for (const r of (JSON.parse(body.toString()) as { records: Rec[] }).records)
          hooked.set(r.seq, r);
        res.writeHead(204).end();
      });
    };
    const hookPort = await freePort();
    let hook = http.createServer(onRequest);
    await new Promise<void>((r) => hook.listen(hookPort, '127.0.0.1', r));

    const syslogSeqs = new Set<number>();
    const syslog = net.createServer((sock) => {
      let buf = '';
      sock.setEncoding('latin1');
      sock.on('data', (d: string) => {
        buf += d;
        for (;;) {
          const m = /^(\d+) /.exec(buf);
          if (!m) break;
          const start = m[0].length;
          const len = Number(m[1]);
          if (Buffer.byteLength(buf, 'latin1') < start + len) break;
          const msg = Buffer.from(buf.slice(start, start + len), 'latin1').toString('utf8');
          buf = buf.slice(start + len);
          const seq = /^<\d+>1 .* \[tessera@32473 seq="(\d+)"/.exec(msg)?.[1];
          if (seq) syslogSeqs.add(Number(seq));
        }
      });
    });
    await new Promise<void>((r) => syslog.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => syslog.close(() => r())));

    server = await startServer({ config: {} });
    const secretFile = path.join(server.dataDir, 'webhook.secret');
    writeFileSync(secretFile, secret + '\n', { mode: 0o600 });
    const exportFile = path.join(server.dataDir, 'audit-export.jsonl');
    // Restart with the sinks configured (the data dir must exist for the secret file first).
    await server.stop();
    const cfg = path.join(server.dataDir, 'server.yaml');
    writeFileSync(
      cfg,
      readFileSync(cfg, 'utf8') +
        `audit:\n  sinks:\n` +
        `    - { name: siem-hook, type: webhook, url: "http://127.0.0.1:${hookPort}/audit", secret_file: "${secretFile}", max_backoff: 200ms, attempts: 2 }\n` +
        `    - { name: siem-syslog, type: syslog, address: "127.0.0.1:${(syslog.address() as net.AddressInfo).port}" }\n` +
        `    - { name: siem-file, type: file, path: "${exportFile}", max_bytes: 8192, keep: 3 }\n`,
    );
    await server.restart();
    const admin = () => adminClients(server.adminSocket);
    for (let i = 0; i < 5; i++) await admin().agents.createJoinToken({});
    const headSeq = async () =>
      Number((await admin().audit.listAuditRecords({ tail: true, limit: 1 })).records[0]?.seq);
    let head = await headSeq();
    const fileSeqs = () =>
      ['.3', '.2', '.1', '']
        .flatMap((s) => {
          try {
            return readFileSync(exportFile + s, 'utf8')
              .split('\n')
              .filter(Boolean);
          } catch {
            return [];
          }
        })
        .map((l) => (JSON.parse(l) as Rec).seq);
    await waitFor(
      () => hooked.size >= head && syslogSeqs.size >= head && fileSeqs().at(-1) === head,
      30_000,
    );

    // The webhook goes down; the server keeps issuing, is restarted, and catches up later.
    await new Promise<void>((r) => hook.close(() => r()));
    for (let i = 0; i < 5; i++) await admin().agents.createJoinToken({});
    await server.stop();
    await server.restart();
    for (let i = 0; i < 3; i++) await admin().agents.createJoinToken({});
    head = await headSeq();
    await waitFor(() => fileSeqs().at(-1) === head && syslogSeqs.size >= head, 30_000);
    assert.ok(hooked.size < head, 'nothing reached the webhook while it was down');
    // Said loudly: an error line per failed round (after `attempts` tries), with the lag.
    await waitFor(
      () => /"sink":"siem-hook".*audit sink cannot deliver/.test(server.output()),
      30_000,
    );
    hook = http.createServer(onRequest);
    await new Promise<void>((r) => hook.listen(hookPort, '127.0.0.1', r));
    closers.push(() => new Promise((r) => hook.close(() => r())));
    await waitFor(() => hooked.size >= head, 30_000);

    assert.equal(badSig, 0);
    for (let seq = 1; seq <= head; seq++) {
      const r = hooked.get(seq);
      assert.ok(r, `webhook got ${seq}`);
      assert.match(r.hash, /^[0-9a-f]{64}$/);
      if (seq > 1) assert.equal(r.prevHash, hooked.get(seq - 1)?.hash, `chain at ${seq}`);
      assert.ok(syslogSeqs.has(seq), `syslog got ${seq}`);
    }
    const seqs = fileSeqs();
    assert.deepEqual(
      seqs,
      [...new Set(seqs)].sort((a, b) => a - b),
      'file: in order, once each',
    );
  });
});
