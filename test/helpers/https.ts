// HTTPS for black-box tests of the public listener: a throw-away CA with a server certificate for
// 127.0.0.1 / localhost, and a fetch that trusts only that CA (openid-client's and jose's
// customFetch). Same as the helpers inside oidc-discovery.test.ts, shared for new tests.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';

/** A test CA and a server certificate for 127.0.0.1 / localhost signed by it. */
export function makeTlsFiles(dir: string): { caPem: string; certFile: string; keyFile: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  run(
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-subj',
    '/CN=oidc test CA',
    '-days',
    '2',
    '-out',
    'ca.pem',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key');
  run('req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr');
  const ext = path.join(dir, 'ext.cnf');
  execFileSync('sh', [
    '-c',
    `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > '${ext}'`,
  ]);
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    'server.pem',
  );
  return {
    caPem: readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    certFile: path.join(dir, 'server.pem'),
    keyFile: path.join(dir, 'server.key'),
  };
}

/** A fetch over node:https trusting only `ca` (openid-client's and jose's customFetch). */
export function fetchTrusting(ca: string) {
  return (
    url: string,
    options: { method?: string; headers?: unknown; body?: unknown; signal?: AbortSignal | null },
  ): Promise<Response> =>
    new Promise((resolve, reject) => {
      const headers = Object.fromEntries(
        new Headers(options.headers as ConstructorParameters<typeof Headers>[0]).entries(),
      );
      const req = https.request(
        url,
        {
          method: options.method ?? 'GET',
          headers,
          ca,
          agent: false,
          ...(options.signal ? { signal: options.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (typeof v === 'string') h.set(k, v);
              else if (Array.isArray(v)) for (const x of v) h.append(k, x);
            }
            resolve(
              new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: h }),
            );
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (typeof options.body === 'string') req.write(options.body);
      else if (options.body instanceof URLSearchParams) req.write(options.body.toString());
      req.end();
    });
}
