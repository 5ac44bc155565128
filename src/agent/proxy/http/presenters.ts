// How a released credential goes into an HTTP request, per the server workload's `present`
// (docs/access.md, "Server workloads"): `authorization-bearer`, `header:NAME`, `basic`,
// `query:NAME`. Whatever the client sent in that header or parameter is replaced — the client
// never chooses the credential the server sees. Pure: the handler applies the result.
//
// Each presentation also names the forms in which the credential could come back (the token, its
// URL encoding, the Basic string), so the response can be scrubbed of them (scrub.ts).
import type { CredentialValue } from '../../../core/access.ts';
import { HttpAnswer } from './http-answer.ts';

export interface Injection {
  /** Header to set (lowercase name), replacing every value the client sent; null for query. */
  readonly header: { readonly name: string; readonly value: string } | null;
  /** Query parameter to set, replacing every one of that name the client sent. */
  readonly query: { readonly name: string; readonly value: string } | null;
  /** What must never be echoed back to the client. */
  readonly secrets: readonly string[];
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const QUERY_NAME_RE = /^[A-Za-z0-9._~-]{1,64}$/;
/** Headers that frame or route the message: never a place for a credential. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-connection',
  'expect',
]);

/** The injection for `present` and the released value; a mismatch is the server's fault: 502. */
export function injectionFor(present: string, value: CredentialValue): Injection {
  if (present === 'basic') {
    if (value.kind !== 'password') throw mismatch(present, value.kind);
    const basic = Buffer.from(`${value.username}:${value.password}`, 'utf8').toString('base64');
    return {
      header: { name: 'authorization', value: `Basic ${basic}` },
      query: null,
      secrets: unique([basic, value.password]),
    };
  }
  if (present === 'aws-sigv4') {
    // Re-signed as a whole (sigv4-forward.ts), never a header or parameter put in.
    throw new HttpAnswer(502, {
      error: 'present aws-sigv4 re-signs the request: nothing to inject',
    });
  }
  const [kind, name = ''] = splitPresent(present);
  if (kind === 'authorization-bearer' || kind === 'header' || kind === 'query') {
    if (value.kind !== 'token') throw mismatch(present, value.kind);
    const token = value.token;
    if (/[\r\n\0]/.test(token)) {
      throw new HttpAnswer(502, { error: `the released credential cannot go in an HTTP ${kind}` });
    }
    const secrets = unique([token, encodeURIComponent(token)]);
    if (kind === 'authorization-bearer') {
      return { header: { name: 'authorization', value: `Bearer ${token}` }, query: null, secrets };
    }
    if (kind === 'header') {
      const lower = name.toLowerCase();
      if (!TOKEN_RE.test(name) || RESERVED_HEADERS.has(lower)) throw badPresent(present);
      return { header: { name: lower, value: token }, query: null, secrets };
    }
    if (!QUERY_NAME_RE.test(name)) throw badPresent(present);
    return { header: null, query: { name, value: token }, secrets };
  }
  throw badPresent(present);
}

/** `header:X-Api-Key` → ['header', 'X-Api-Key']; a name is required exactly for header/query. */
function splitPresent(present: string): [string, string?] {
  const i = present.indexOf(':');
  if (i < 0) return present === 'authorization-bearer' ? [present] : ['', ''];
  const kind = present.slice(0, i);
  return kind === 'header' || kind === 'query' ? [kind, present.slice(i + 1)] : ['', ''];
}

/**
 * The request target with the parameter `name` set to `value`: every parameter of that name
 * (compared after percent-decoding) removed, the new one appended; the others kept byte for byte.
 */
export function withQueryParam(target: string, name: string, value: string): string {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const kept =
    q < 0
      ? []
      : target
          .slice(q + 1)
          .split('&')
          .filter((p) => p !== '' && paramName(p) !== name);
  kept.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return `${path}?${kept.join('&')}`;
}

function paramName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = (eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function unique(xs: string[]): string[] {
  return [...new Set(xs.filter((x) => x.length > 0))];
}

function mismatch(present: string, kind: string): HttpAnswer {
  return new HttpAnswer(502, {
    error: `the released credential (${kind}) cannot be presented as ${present}: check the server workload's credential provider`,
  });
}

function badPresent(present: string): HttpAnswer {
  return new HttpAnswer(502, {
    error: `server workload present "${present.slice(0, 80)}" is not an HTTP presentation`,
  });
}
