// Black-box: the proxy's HTTP part (docs/injection-http.md) with a real server, a real agent and
// the real CLI creating everything (helpers/proxy-stack.ts: the secret put, the access document
// imported); unmodified clients (curl, Node's fetch) as the application.
// Two server workloads presenting `header:x-api-key` from a static secret: `api`, plain HTTP,
// behind a local listener, whose policy allows only paths under /v1/ (a `request.path`
// condition); `secure`, HTTPS with its own CA (`tls_ca`) and `tls_decrypt`, reached through the explicit
// proxy (HTTPS_PROXY, the client trusting the proxy CA from `tessera proxy ca show`). The test
// servers check the header and echo it back, so a leak in the response would show.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTlsFiles } from './helpers/https.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { grant, startProxyStack, type ProxyStack } from './helpers/proxy-stack.ts';
import { CHAINED, DEADLINE_MS } from './helpers/serving-agent.ts';

const ME = 'spiffe://example.org/proxy/http-client';
const SECRET = 'api-key-9c41e7d2-never-in-logs';
const MASKED = '*'.repeat(SECRET.length);
const CONDITION = 'request.path.startsWith("/v1/")';

/** Answers 200 with what it saw of x-api-key (echoed, also in a header), 401 without it. */
function checkHeader(req: http.IncomingMessage, res: http.ServerResponse): void {
  const key = String(req.headers['x-api-key'] ?? '');
  const ok = key === SECRET;
  const body = JSON.stringify({ ok, path: req.url, echo: key });
  res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'x-echo': key });
  res.end(body);
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A child process, asynchronously (the test servers live in this process). Bounded. */
function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, timeout: 30_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const FETCH_CHILD =
  'fetch(process.argv[1]).then(async (r) => console.log(JSON.stringify({ status: r.status, ' +
  'echoHeader: r.headers.get("x-echo"), body: await r.text() })), (e) => { console.error(e); ' +
  'process.exit(3) })';

describe('proxy HTTP: local listener and explicit proxy', CHAINED, () => {
  let stack: ProxyStack;
  let plain: http.Server | undefined;
  let secure: https.Server | undefined;
  let plainPort: number;
  let securePort: number;
  let listenPort: number;
  let proxyPort: number;
  let proxyCaFile: string;

  before(async () => {
    proxyPort = await freePort();
    stack = await startProxyStack({
      name: 'http',
      clients: [ME],
      secrets: { 'api-key': SECRET },
      // The upstreams (one with a certificate of a CA made in the stack's directory) listen
      // first: the server workloads name their ports.
      beforeAgent: async ({ dir, importAccess }) => {
        const tls = makeTlsFiles(dir);
        plain = http.createServer(checkHeader);
        await new Promise<void>((r) => plain!.listen(0, '127.0.0.1', r));
        plainPort = (plain.address() as AddressInfo).port;
        secure = https.createServer(
          { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
          checkHeader,
        );
        await new Promise<void>((r) => secure!.listen(0, '127.0.0.1', r));
        securePort = (secure.address() as AddressInfo).port;
        const presenting = { host: '127.0.0.1', present: 'header:x-api-key' };
        await importAccess({
          server_workloads: [
            { name: 'api', protocol: 'http', port: plainPort, ...presenting },
            {
              name: 'secure',
              protocol: 'https',
              port: securePort,
              ...presenting,
              tls_ca: tls.caPem,
              tls_decrypt: true,
            },
          ],
          credential_providers: [
            { name: 'api-key', type: 'static-secret', config: { secret: 'api-key' } },
          ],
          access_policies: [
            { ...grant(ME, 'api', 'api-key'), condition: CONDITION },
            grant(ME, 'secure', 'api-key'),
          ],
        });
      },
      listeners: ['api'],
      proxy: { http_listen: `127.0.0.1:${proxyPort}` },
    });
    listenPort = stack.port('api');
    const ca = await stack.ok('proxy', 'ca', 'show', '--data-dir', stack.agent.dataDir);
    assert.match(ca, /BEGIN CERTIFICATE/);
    proxyCaFile = path.join(stack.dir, 'tessera-proxy-ca.pem');
    writeFileSync(proxyCaFile, ca);
  });

  after(async () => {
    await stack?.stop();
    plain?.closeAllConnections();
    plain?.close();
    secure?.closeAllConnections();
    secure?.close();
  });

  /** curl's answer: body, then the status on the last line. */
  async function curl(...args: string[]): Promise<{ status: number; body: string }> {
    const r = await run('curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', ...args]);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  }

  function assertInjectedAndMasked(body: string, echoHeader: string | null | undefined): void {
    assert.ok(!body.includes(SECRET), `the credential is echoed unmasked: ${body}`);
    const seen = JSON.parse(body) as { ok: boolean; echo: string };
    assert.equal(seen.ok, true, body);
    assert.equal(seen.echo, MASKED);
    if (echoHeader !== undefined) assert.equal(echoHeader, MASKED);
  }

  it('local listener: curl and fetch reach the server with the header added', async () => {
    const url = `http://127.0.0.1:${listenPort}/v1/items`;
    // The agent learns the server workloads from the server shortly after it starts.
    await waitFor(async () => (await curl(url)).status === 200, DEADLINE_MS);
    const c = await curl('-H', 'x-api-key: forged-by-the-client', url);
    assert.equal(c.status, 200, c.body);
    assertInjectedAndMasked(c.body, undefined);
    const f = await fetch(url);
    assert.equal(f.status, 200);
    assertInjectedAndMasked(await f.text(), f.headers.get('x-echo'));
  });

  it('explicit proxy: HTTPS_PROXY with curl and fetch, TLS terminated with the proxy CA', async () => {
    const url = `https://127.0.0.1:${securePort}/anything`;
    const proxy = `http://127.0.0.1:${proxyPort}`;
    await waitFor(
      async () => (await curl('--proxy', proxy, '--cacert', proxyCaFile, url)).status === 200,
      DEADLINE_MS,
    );
    const c = await curl('--proxy', proxy, '--cacert', proxyCaFile, url);
    assert.equal(c.status, 200, c.body);
    assertInjectedAndMasked(c.body, undefined);
    const f = await run(process.execPath, ['-e', FETCH_CHILD, url], {
      NODE_USE_ENV_PROXY: '1',
      HTTPS_PROXY: proxy,
      NODE_EXTRA_CA_CERTS: proxyCaFile,
    });
    assert.equal(f.code, 0, f.stderr);
    const answer = JSON.parse(f.stdout) as { status: number; echoHeader: string; body: string };
    assert.equal(answer.status, 200, f.stdout);
    assertInjectedAndMasked(answer.body, answer.echoHeader);
  });

  it('explicit proxy: CONNECT to a host that is not a server workload is 403', async () => {
    const r = await run('curl', [
      ...['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_connect}'],
      ...['--proxy', `http://127.0.0.1:${proxyPort}`, `https://127.0.0.1:${plainPort + 1}/`],
    ]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '403', r.stderr);
  });

  it('a request.path condition: /v1/ passes, another path is 403 naming the condition', async () => {
    const allowed = await curl(`http://127.0.0.1:${listenPort}/v1/orders`);
    assert.equal(allowed.status, 200, allowed.body);
    const denied = await curl(`http://127.0.0.1:${listenPort}/admin/users`);
    assert.equal(denied.status, 403, denied.body);
    const body = JSON.parse(denied.body) as Record<string, unknown>;
    assert.equal(body.policy, 'me-api');
    assert.equal(body.failed_condition, CONDITION);
    assert.equal(typeof body.correlation_id, 'string');
  });

  it('one correlation id per request across the audit chain, released and cached', async () => {
    const url = `http://127.0.0.1:${listenPort}/v1/audited`;
    assert.equal((await curl(url)).status, 200);
    assert.equal((await curl(url)).status, 200);
    const chainOf = async (cached: boolean) => {
      const chain = await stack.auditChain((r) => (r.details.cached === true) === cached);
      assert.ok(!JSON.stringify(chain).includes(SECRET), 'no credential in audit records');
      return chain;
    };
    await chainOf(false);
    const cached = await chainOf(true);
    for (const r of cached) assert.equal(r.details.cached, true, JSON.stringify(r));
  });

  it('the credential never appears in the agent log', () => {
    assert.ok(stack.agent.output().length > 0);
    assert.ok(!stack.agent.output().includes(SECRET), 'the credential is logged');
  });
});
