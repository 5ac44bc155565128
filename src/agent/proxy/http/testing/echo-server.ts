// Test support: the server workload end of the proxy tests — a real HTTP or HTTPS server (its own
// throw-away CA, certificate for localhost / 127.0.0.1) that checks the credential the proxy
// injected and echoes what it received, so tests see exactly what reached the server.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeTlsFiles } from '../../../../../test/helpers/https.ts';

export interface Echo {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface EchoServer {
  readonly port: number;
  /** The test CA's PEM (HTTPS only; "" for HTTP). */
  readonly caPem: string;
  /** Every request received, in order. */
  readonly received: Echo[];
  /** Sockets accepted (keep-alive reuse shows as fewer sockets than requests). */
  readonly sockets: () => number;
  close(): Promise<void>;
}

/**
 * Answers 200 with the request echoed as JSON (headers included: an echo is how a credential
 * would leak back), also in an `x-echo-authorization` header. `/redirect` answers 302 to a
 * Location carrying the query; `/big` streams `n` bytes.
 */
export async function startEchoServer(tls: boolean): Promise<EchoServer> {
  const received: Echo[] = [];
  let sockets = 0;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const echo: Echo = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(echo);
      if (req.url?.startsWith('/redirect')) {
        res.writeHead(302, { location: `https://elsewhere.example${req.url}` });
        return res.end();
      }
      const big = /^\/big\?n=([0-9]+)/.exec(req.url ?? '');
      if (big) {
        const n = Number(big[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        return res.end(Buffer.alloc(n, 0x61));
      }
      const text = JSON.stringify(echo);
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-echo-authorization': req.headers.authorization ?? '',
      });
      res.end(text);
    });
  };
  let caPem = '';
  let dir = '';
  let server: http.Server;
  if (tls) {
    dir = mkdtempSync(path.join(tmpdir(), 'tessera-echo-'));
    const f = makeTlsFiles(dir);
    caPem = f.caPem;
    server = https.createServer(
      { cert: readFileSync(f.certFile), key: readFileSync(f.keyFile), ALPNProtocols: ['http/1.1'] },
      handler,
    );
  } else {
    server = http.createServer(handler);
  }
  server.on('connection', () => sockets++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    caPem,
    received,
    sockets: () => sockets,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
        if (dir) rmSync(dir, { recursive: true, force: true });
      }),
  };
}
