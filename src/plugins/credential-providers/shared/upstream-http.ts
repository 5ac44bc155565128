// One POST to a cloud token service: within a timeout that covers the whole answer, no redirects
// followed, the body read up to a bound. Transport failures become UnavailableError naming the
// upstream; what the upstream said is returned for the caller to parse in the cloud's own error
// format. Untrusted text from the upstream is cleaned (printable ASCII, bounded, JWTs redacted)
// before it goes into a message.
import { UnavailableError } from '../../../core/errors.ts';

export const MAX_UPSTREAM_RESPONSE_BYTES = 64 * 1024;

export interface UpstreamPost {
  readonly url: string;
  /** How errors name the upstream, e.g. `AWS STS https://sts.amazonaws.com/`. */
  readonly where: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly timeoutMs: number;
  readonly fetch: typeof fetch;
}

export interface UpstreamAnswer {
  readonly status: number;
  readonly ok: boolean;
  readonly text: string;
}

/** A compact JWS anywhere in a text (an upstream echoing the subject token back). */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

/** Printable ASCII, bounded, tokens redacted: for untrusted words in a message. */
export function cleanText(v: unknown, max: number): string {
  if (typeof v !== 'string') return '';
  return v
    .replace(JWT_LIKE, '[token]')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, max);
}

async function readBounded(res: Response, where: string): Promise<string> {
  const tooLarge = () =>
    new UnavailableError(`${where}: response larger than ${MAX_UPSTREAM_RESPONSE_BYTES} bytes`);
  if (Number(res.headers.get('content-length') ?? '0') > MAX_UPSTREAM_RESPONSE_BYTES) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > MAX_UPSTREAM_RESPONSE_BYTES) {
        await res.body.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function postUpstream(r: UpstreamPost): Promise<UpstreamAnswer> {
  const signal = AbortSignal.timeout(r.timeoutMs);
  try {
    const res = await r.fetch(r.url, {
      method: 'POST',
      headers: { ...r.headers },
      body: r.body,
      redirect: 'manual',
      signal,
    });
    // A token service never redirects; following one would send the subject token elsewhere.
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel().catch(() => {});
      throw new UnavailableError(`${r.where}: answered with a redirect (HTTP ${res.status})`);
    }
    const text = await readBounded(res, r.where);
    return { status: res.status, ok: res.ok, text };
  } catch (e) {
    if (e instanceof UnavailableError) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const reason = signal.aborted
      ? `no answer within ${r.timeoutMs} ms`
      : cleanText(cause?.code ?? cause?.message ?? (e as Error).message, 200);
    throw new UnavailableError(`${r.where}: cannot reach it: ${reason}`);
  }
}

/** A JSON object body, or null when the text is not one. */
export function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
