// JSON over https for the k8s_psat server half (OIDC discovery, JWKS, TokenReview): https only,
// no redirects, bounded in time and size, an optional CA replacing Node's roots (a cluster's own
// CA), an optional bearer token. Errors name the URL, never the token.
import https from 'node:https';
import { InvalidArgumentError, UnavailableError } from '../../../core/errors.ts';

export interface HttpsJsonOptions {
  /** PEM CA certificates to trust instead of Node's roots. */
  readonly ca?: string | undefined;
  readonly bearer?: string | undefined;
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export function httpsJson(url: URL, o: HttpsJsonOptions, body?: unknown): Promise<unknown> {
  const where = url.toString().slice(0, 200);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (msg: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new UnavailableError(`k8s_psat: ${where}: ${msg}`));
    };
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = https.request(
      url,
      {
        method: data ? 'POST' : 'GET',
        headers: {
          accept: 'application/json',
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
          ...(o.bearer ? { authorization: `Bearer ${o.bearer}` } : {}),
        },
        ...(o.ca ? { ca: o.ca } : {}),
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return fail(`redirect (${status}) refused`);
        if (status < 200 || status >= 300) return fail(`HTTP ${status}`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > o.maxBytes) return fail(`response larger than ${o.maxBytes} bytes`);
          chunks.push(c);
        });
        res.on('error', (e) => fail(e.message));
        res.on('end', () => {
          if (settled) return;
          try {
            const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
            settled = true;
            clearTimeout(timer);
            resolve(doc);
          } catch {
            fail('response is not JSON');
          }
        });
      },
    );
    req.on('error', (e) => fail(e.message));
    const timer = setTimeout(() => fail(`no response within ${o.timeoutMs} ms`), o.timeoutMs);
    req.end(data);
  });
}

/** An https URL without userinfo or fragment (config values are checked once at start). */
export function httpsUrl(raw: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new InvalidArgumentError(`${what}: "${raw.slice(0, 200)}" is not a URL`);
  }
  if (u.protocol !== 'https:' || u.username || u.password || u.hash)
    throw new InvalidArgumentError(
      `${what}: "${raw.slice(0, 200)}" must be an https URL without userinfo or fragment`,
    );
  return u;
}
