// One client-credentials token request (RFC 6749 §4.4) with the client authenticated by
// client_secret_basic, client_secret_post (§2.3.1) or private_key_jwt (RFC 7523 §2.2). The
// response is read up to a bound and within a timeout; an OAuth error response is reported by
// its `error` code and description, naming the endpoint — never the client secret.
import { randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { UnavailableError } from '../../../core/errors.ts';
import { signJws } from '../shared/jws.ts';

export const MAX_RESPONSE_BYTES = 64 * 1024;

export type ClientAuth =
  | { readonly method: 'client_secret_basic'; readonly secret: string }
  | { readonly method: 'client_secret_post'; readonly secret: string }
  | { readonly method: 'private_key_jwt'; readonly key: KeyObject };

export interface TokenRequest {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly auth: ClientAuth;
  readonly scope: string;
  readonly audience: string;
  readonly resource: string;
  readonly timeoutMs: number;
  readonly now: number;
  readonly fetch: typeof fetch;
}

export interface TokenResponse {
  readonly accessToken: string;
  /** Seconds, or null when the endpoint did not say. */
  readonly expiresIn: number | null;
}

/** application/x-www-form-urlencoded, as §2.3.1 requires before base64 in the Basic header. */
const formEncode = (s: string) => new URLSearchParams({ s }).toString().slice(2);

function clientAssertion(r: TokenRequest, key: KeyObject): string {
  const iat = Math.floor(r.now / 1000);
  return signJws(key, {
    iss: r.clientId,
    sub: r.clientId,
    aud: r.tokenUrl,
    jti: randomUUID(),
    iat,
    exp: iat + 60,
  });
}

/** Printable ASCII, bounded: the endpoint's words are untrusted. */
const clean = (v: unknown, max: number) =>
  typeof v === 'string' ? v.replace(/[^\x20-\x7e]/g, '?').slice(0, max) : '';

async function readBounded(res: Response, where: string): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_RESPONSE_BYTES) {
    await res.body?.cancel();
    throw new UnavailableError(`${where}: response larger than ${MAX_RESPONSE_BYTES} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > MAX_RESPONSE_BYTES) {
        await res.body.cancel().catch(() => {});
        throw new UnavailableError(`${where}: response larger than ${MAX_RESPONSE_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function requestToken(r: TokenRequest): Promise<TokenResponse> {
  const where = `token endpoint ${r.tokenUrl}`;
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (r.scope !== '') form.set('scope', r.scope);
  if (r.audience !== '') form.set('audience', r.audience);
  if (r.resource !== '') form.set('resource', r.resource);
  const auth = r.auth;
  if (auth.method === 'client_secret_basic') {
    const pair = `${formEncode(r.clientId)}:${formEncode(auth.secret)}`;
    headers.authorization = `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
  } else if (auth.method === 'client_secret_post') {
    form.set('client_id', r.clientId);
    form.set('client_secret', auth.secret);
  } else {
    form.set('client_id', r.clientId);
    form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    form.set('client_assertion', clientAssertion(r, auth.key));
  }
  let res: Response;
  let text: string;
  const signal = AbortSignal.timeout(r.timeoutMs);
  try {
    res = await r.fetch(r.tokenUrl, {
      method: 'POST',
      headers,
      body: form.toString(),
      redirect: 'error',
      signal,
    });
    text = await readBounded(res, where);
  } catch (e) {
    if (e instanceof UnavailableError) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const reason = signal.aborted
      ? `no answer within ${r.timeoutMs} ms`
      : clean(cause?.code ?? cause?.message ?? (e as Error).message, 200);
    throw new UnavailableError(`${where}: cannot reach it: ${reason}`);
  }
  let body: Record<string, unknown> = {};
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      body = v as Record<string, unknown>;
  } catch {
    // Reported below by status or missing fields.
  }
  if (!res.ok || typeof body.error === 'string') {
    const error = clean(body.error, 100);
    if (error === '') throw new UnavailableError(`${where}: HTTP ${res.status}`);
    const desc = clean(body.error_description, 300);
    throw new UnavailableError(
      `${where} refused: ${error}${desc === '' ? '' : ` (${desc})`} (HTTP ${res.status})`,
    );
  }
  const token = body.access_token;
  if (typeof token !== 'string' || token === '') {
    throw new UnavailableError(`${where}: response has no access_token`);
  }
  const exp = body.expires_in;
  const expiresIn =
    typeof exp === 'number' && Number.isFinite(exp) && exp > 0
      ? exp
      : typeof exp === 'string' && /^\d{1,9}$/.test(exp) && Number(exp) > 0
        ? Number(exp)
        : null;
  return { accessToken: token, expiresIn };
}
