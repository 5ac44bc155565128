// Black box: request bodies announced as chunked are held to the same limits as sized ones while
// they stream. Each form endpoint of the public listener (token, introspection, revocation) answers
// a chunked body that passes its 16 KiB limit with the same 400 as a sized one, naming the limit,
// without reading the rest, and closes the connection after the answer; the Connect API's
// max_request_bytes holds for a body streamed as HTTP/2 DATA frames without a content-length.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startStsServer, githubPolicy, OCTO_API_POLICY } from './helpers/sts-server.ts';
import type { ServerProcess } from './helpers/server-process.ts';

const LIMIT = 16 * 1024;
const DESCRIPTION = `request body too large (limit ${LIMIT} bytes)`;

interface Answer {
  /** The raw HTTP response as received (empty if none). */
  readonly response: string;
  /** Body bytes written to the socket before the answer was complete. */
  readonly written: number;
  /** The server closed the connection (FIN or reset) after answering. */
  readonly closed: boolean;
  readonly error: string;
}

/**
 * POSTs a chunked form body of `total` bytes on a raw socket, reading while it writes; resolves
 * once the server has answered and closed. `end: false` never sends the last chunk, so an answer
 * proves the server did not wait for the body's end.
 */
function postChunked(
  port: number,
  path: string,
  total: number,
  o: { end?: boolean } = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let response = '';
    let written = 0;
    let done = false;
    let error = '';
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ response, written, closed, error });
    };
    sock.on('data', (d: Buffer) => (response += d.toString('latin1')));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    // A reset once the answer is in (the server closed with our bytes unread) ends it too.
    sock.on('error', (e) => {
      error = e.message;
      finish(true);
    });
    const piece = 'a'.repeat(4096);
    const chunk = Buffer.from(`${piece.length.toString(16)}\r\n${piece}\r\n`);
    sock.on('connect', () => {
      sock.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          'Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n' +
          `2\r\nx=\r\n`,
      );
      // As an HTTP client does, it reads while it writes: after each chunk the event loop runs
      // (an answer that arrived is taken in), and a full socket buffer waits for 'drain'.
      const pump = () => {
        if (done || sock.destroyed) return;
        if (written >= total) {
          if (o.end !== false) sock.write('0\r\n\r\n');
          return;
        }
        written += piece.length;
        if (sock.write(chunk)) setImmediate(pump);
        else sock.once('drain', pump);
      };
      pump();
    });
  });
}

function parse(raw: string, why = ''): { status: number; headers: string; body: string } {
  const head = raw.indexOf('\r\n\r\n');
  assert.ok(head > 0, `an HTTP response, got ${JSON.stringify(raw.slice(0, 200))} ${why}`);
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1]);
  return { status, headers: raw.slice(0, head).toLowerCase(), body: raw.slice(head + 4) };
}

describe('chunked request bodies on the public listener', () => {
  let server: ServerProcess;
  let port: number;

  before(async () => {
    const sts = await startStsServer({
      policies: [githubPolicy(), { ...OCTO_API_POLICY, name: 'introspector' }],
      introspection_clients: ['introspector'],
    });
    server = sts.server;
    port = Number(new URL(sts.issuer).port);
  });
  after(async () => {
    await server?.stop();
  });

  for (const path of ['/token', '/introspect', '/revoke']) {
    for (const [what, total] of [
      ['400 KB', 400_000],
      ['5 MB', 5_000_000],
    ] as const) {
      it(`POST ${path}, ${what} chunked: 400 naming the limit, then the connection is closed`, async () => {
        const a = await postChunked(port, path, total);
        const r = parse(a.response, `written ${a.written}, ${a.error}`);
        assert.equal(r.status, 400, a.response.slice(0, 500));
        assert.match(r.headers, /\r\nconnection: close\r\n/);
        assert.deepEqual(JSON.parse(r.body), {
          error: 'invalid_request',
          error_description: DESCRIPTION,
        });
        assert.ok(a.closed, 'the server closed the connection');
      });
    }

    it(`POST ${path}: answered once the body passes the limit, before it ends`, async () => {
      // The last chunk is never sent: only an answer given at the limit ends this.
      const a = await postChunked(port, path, 64 * 1024, { end: false });
      const r = parse(a.response);
      assert.equal(r.status, 400);
      assert.equal(
        (JSON.parse(r.body) as { error_description: string }).error_description,
        DESCRIPTION,
      );
      assert.ok(a.closed);
    });
  }

  it('a sized body over the limit gets the same answer, unread', async () => {
    const answer = await new Promise<string>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      let out = '';
      sock.on('data', (d: Buffer) => (out += d.toString('latin1')));
      sock.on('close', () => resolve(out));
      sock.on('error', () => {});
      // Announces 5 MB, sends none of it: the answer cannot have waited for the body.
      sock.write(
        'POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\n',
      );
    });
    const r = parse(answer);
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.body), {
      error: 'invalid_request',
      error_description: DESCRIPTION,
    });
  });

  it('the Connect API holds max_request_bytes for a body streamed without a content-length', async () => {
    const limit = 4 * 1024 * 1024;
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(server.adminSocket),
    });
    session.on('error', () => {});
    try {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/tessera.v1.BundleService/GetBundle',
          'content-type': 'application/json',
        });
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        // 5 MB of DATA frames, and the stream never ended: the answer comes at the limit.
        const piece = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < 5_000_000 && !req.destroyed && !req.writableEnded && status === 0) {
            sent += piece.length;
            if (!req.write(piece)) {
              req.once('drain', pump);
              return;
            }
          }
        };
        pump();
      });
      assert.ok(res.status >= 400, `status ${res.status}: ${res.body}`);
      const err = JSON.parse(res.body) as { code: string; message: string };
      assert.equal(err.code, 'resource_exhausted', res.body);
      assert.match(err.message, new RegExp(String(limit)));
    } finally {
      session.destroy();
    }
  });
});
