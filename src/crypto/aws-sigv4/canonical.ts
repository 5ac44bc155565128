// The canonical request of SigV4, built from the request as it goes on the wire — the same
// rules the AWS SDK's signer (@smithy/signature-v4) applies to the request it sends, so that
// a re-signed request verifies where the SDK's own would:
//   - path: S3 signs the path as sent; every other service signs it normalised (empty, "." and
//     ".." segments resolved) and percent-encoded once more;
//   - query: parameters percent-decoded, re-encoded (RFC 3986 unreserved kept), sorted;
//   - headers: the signed ones only, values trimmed with inner runs of spaces folded.
import { InvalidArgumentError } from '../../core/errors.ts';

/** Services whose SDK clients sign the path as sent (no second encoding, no normalisation). */
const AS_SENT_PATH_SERVICES = new Set(['s3', 's3-object-lambda', 's3-outposts', 's3express']);
const MAX_QUERY_PARAMS = 256;

export type HeaderValue = string | readonly string[] | undefined;

export interface CanonicalParts {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly signedHeaders: readonly string[];
  readonly payloadHash: string;
}

/** encodeURIComponent plus the sub-delimiters it leaves alone: what SigV4 calls URI-encode. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InvalidArgumentError(`malformed percent-encoding in the request ${what}`);
  }
}

export function canonicalPath(path: string, service: string): string {
  if (AS_SENT_PATH_SERVICES.has(service)) return path;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return uriEncode(`/${segments.join('/')}${trailing}`).replace(/%2F/g, '/');
}

export function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pieces = query.split('&');
  if (pieces.length > MAX_QUERY_PARAMS) {
    throw new InvalidArgumentError(
      `the request has more than ${MAX_QUERY_PARAMS} query parameters`,
    );
  }
  const pairs = pieces.map((piece) => {
    if (piece === '') throw new InvalidArgumentError('the request query has an empty parameter');
    const eq = piece.indexOf('=');
    const key = decode(eq < 0 ? piece : piece.slice(0, eq), 'query');
    const value = eq < 0 ? '' : decode(piece.slice(eq + 1), 'query');
    return [uriEncode(key), uriEncode(value)] as const;
  });
  pairs.sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** `name:value` lines of the signed headers; a signed header the request lacks is refused. */
export function canonicalHeaders(
  headers: Readonly<Record<string, HeaderValue>>,
  signed: readonly string[],
): string {
  return signed
    .map((name) => {
      const value = headers[name];
      if (value === undefined) {
        throw new InvalidArgumentError(
          `the SigV4 signed header ${name} is missing from the request`,
        );
      }
      const joined = typeof value === 'string' ? value : value.join(',');
      return `${name}:${joined.replace(/[ \t]+/g, ' ').trim()}\n`;
    })
    .join('');
}

export function canonicalRequest(p: CanonicalParts, service: string): string {
  return [
    p.method,
    canonicalPath(p.path, service),
    canonicalQuery(p.query),
    canonicalHeaders(p.headers, p.signedHeaders),
    p.signedHeaders.join(';'),
    p.payloadHash,
  ].join('\n');
}
