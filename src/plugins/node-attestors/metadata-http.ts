// The agent halves' one HTTP call to a cloud metadata service (AWS IMDS, GCE metadata server,
// Azure IMDS): bounded in time and size, no redirects, and errors that name the endpoint and
// status but never the response body (it may hold a token).
import { UnavailableError } from '../../core/errors.ts';

export const METADATA_TIMEOUT_MS = 5_000;
export const MAX_METADATA_RESPONSE_BYTES = 64 * 1024;

export interface MetadataRequest {
  readonly method?: 'GET' | 'PUT';
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/** The response body as text; throws UnavailableError unless the status is 200. */
export async function metadataRequest(
  what: string,
  url: URL,
  r: MetadataRequest = {},
): Promise<string> {
  const where = `${what}: ${url.origin}${url.pathname}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: r.method ?? 'GET',
      headers: r.headers ?? {},
      redirect: 'error',
      signal: AbortSignal.timeout(r.timeoutMs ?? METADATA_TIMEOUT_MS),
    });
  } catch (e) {
    throw new UnavailableError(`${where}: ${(e as Error).message}`, { cause: e });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new UnavailableError(`${where}: HTTP ${res.status}`);
  }
  const body = await readBounded(res, MAX_METADATA_RESPONSE_BYTES);
  if (body === null)
    throw new UnavailableError(
      `${where}: response larger than ${MAX_METADATA_RESPONSE_BYTES} bytes`,
    );
  return body.toString('utf8');
}

/** The body, or null (and the stream cancelled) as soon as it passes `max` bytes. */
export async function readBounded(res: Response, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  if (!reader) return Buffer.alloc(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks);
    size += value.length;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(Buffer.from(value));
  }
}

/** An http(s) base URL without userinfo, query or fragment (the metadata endpoint setting). */
export function metadataEndpoint(raw: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TypeError(`${what}: "${raw.slice(0, 64)}" is not a URL`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.search || u.hash)
    throw new TypeError(`${what}: "${raw.slice(0, 64)}" must be an http(s) URL without query`);
  return u;
}
