// Re-signing an application's SigV4 request with the brokered AWS credentials (docs/injection.md,
// "aws-sigv4"). The application's SDK signs with placeholder keys; the proxy checks the request
// is a well-formed SigV4 request and signs it again — same scope (date, region, service), same
// signed headers, same payload hash, same x-amz-date — with the brokered access key, secret and
// session token. Only the proxy-http handler calls this, for server workloads with
// `present: aws-sigv4`; it forwards exactly the headers and body returned here.
//
// Untrusted, from the application: every header, the path, the query and the body. Nothing of
// the placeholder signature is verified (its key is not ours to know); the shape is, strictly.
import { Readable } from 'node:stream';
import type { Clock } from '../../../core/clock.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { formatAuthorization, parseAuthorization } from './authorization.ts';
import { ChunkResigner } from './aws-chunked.ts';
import { canonicalRequest, type HeaderValue } from '../../../crypto/aws-sigv4/canonical.ts';
import {
  hmacHex,
  requestStringToSign,
  sha256Hex,
  signingKey,
} from '../../../crypto/aws-sigv4/signing.ts';

export interface SigV4Head {
  readonly method: string;
  /** The request target's path as sent (still percent-encoded), starting with "/". */
  readonly path: string;
  /** The query string as sent, without the "?" ("" when none). */
  readonly query: string;
  /** Lower-case names, as node:http gives them; a repeated header as an array. */
  readonly headers: Readonly<Record<string, HeaderValue>>;
}

/** The brokered credentials (a released credential of kind "aws"). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** "" for long-term keys: then no X-Amz-Security-Token is sent. */
  readonly sessionToken: string;
}

export interface ResignOptions {
  readonly clock: Clock;
  /** How far X-Amz-Date may be from the proxy's clock. Default 15 minutes (as AWS). */
  readonly maxSkewMs?: number;
  /** A body hashed by the proxy (no x-amz-content-sha256, not S3) is held up to this. Default 1 MiB. */
  readonly maxHashedBodyBytes?: number;
  /** Largest aws-chunked chunk held while it is re-signed. Default 1 MiB. */
  readonly maxChunkBytes?: number;
}

export interface ResignedRequest {
  /** The request's headers with authorization (and x-amz-security-token) replaced. */
  readonly headers: Record<string, string | string[]>;
  /** The body to forward (the same stream, or its re-signed / buffered form). */
  readonly body: Readable;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
const UNSIGNED = 'UNSIGNED-PAYLOAD';
const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
const S3_SERVICES = new Set(['s3', 's3-object-lambda', 's3-outposts', 's3express']);
const TOKEN_HEADER = 'x-amz-security-token';

/**
 * Re-signs `head` with `creds`. Throws InvalidArgumentError naming what is malformed; a body
 * that turns out malformed later (aws-chunked framing) errors the returned body stream with one.
 */
export async function resignSigV4(
  head: SigV4Head,
  body: Readable,
  creds: AwsCredentials,
  o: ResignOptions,
): Promise<ResignedRequest> {
  const headers = lowerCaseHeaders(head.headers);
  checkTarget(head);
  const authorization = single(headers, 'authorization');
  if (authorization === undefined) {
    throw new InvalidArgumentError('the request has no Authorization header (AWS4-HMAC-SHA256)');
  }
  const auth = parseAuthorization(authorization);
  const amzDate = single(headers, 'x-amz-date');
  if (amzDate === undefined) throw new InvalidArgumentError('the request has no X-Amz-Date header');
  checkDate(amzDate, auth.scope.date, o);

  const declared = single(headers, 'x-amz-content-sha256');
  const s3 = S3_SERVICES.has(auth.scope.service);
  if (declared === undefined && s3) {
    throw new InvalidArgumentError('an S3 request must carry x-amz-content-sha256');
  }
  let payloadHash: string;
  let forwarded: Readable = body;
  if (declared === undefined) {
    const bytes = await readBounded(body, o.maxHashedBodyBytes ?? 1 << 20);
    payloadHash = sha256Hex(bytes);
    forwarded = Readable.from(bytes.length > 0 ? [bytes] : []);
  } else {
    payloadHash = checkPayloadMode(declared);
  }
  const decoded = payloadHash === STREAMING_SIGNED ? decodedLength(headers) : 0;

  // The session token is part of what is signed; the placeholder one (if any) is replaced.
  const signedHeaders = auth.signedHeaders.filter((h) => h !== TOKEN_HEADER);
  delete headers[TOKEN_HEADER];
  if (creds.sessionToken !== '') {
    headers[TOKEN_HEADER] = creds.sessionToken;
    signedHeaders.push(TOKEN_HEADER);
    signedHeaders.sort();
  }
  delete headers.authorization;
  const canonical = canonicalRequest(
    {
      method: head.method,
      path: head.path,
      query: head.query,
      headers,
      signedHeaders,
      payloadHash,
    },
    auth.scope.service,
  );
  const key = signingKey(creds.secretAccessKey, auth.scope);
  const signature = hmacHex(key, requestStringToSign(amzDate, auth.scope, canonical));
  headers.authorization = formatAuthorization({
    accessKeyId: creds.accessKeyId,
    scope: auth.scope,
    signedHeaders,
    signature,
  });

  if (payloadHash === STREAMING_SIGNED) {
    forwarded = new ChunkResigner(body, {
      key,
      amzDate,
      scope: auth.scope,
      seedSignature: signature,
      decodedLength: decoded,
      maxChunkBytes: o.maxChunkBytes ?? 1 << 20,
    });
  }
  return { headers, body: forwarded };
}

function lowerCaseHeaders(input: SigV4Head['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (lower in out) throw new InvalidArgumentError(`the request header ${lower} appears twice`);
    out[lower] = typeof value === 'string' ? value : [...value];
  }
  return out;
}

function single(headers: Record<string, string | string[]>, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) throw new InvalidArgumentError(`the request header ${name} appears twice`);
  return v;
}

function checkTarget(head: SigV4Head): void {
  if (!/^[A-Z]{1,16}$/.test(head.method))
    throw new InvalidArgumentError('malformed request method');
  // Printable ASCII only: what was signed must be what is sent, byte for byte.
  if (!head.path.startsWith('/') || !/^[\x21-\x7e]*$/.test(head.path) || /[?#]/.test(head.path)) {
    throw new InvalidArgumentError('malformed request path');
  }
  if (!/^[\x21-\x7e]*$/.test(head.query) || head.query.includes('#')) {
    throw new InvalidArgumentError('malformed request query');
  }
  if (/(?:^|&)x-amz-(?:signature|credential|algorithm)=/i.test(head.query)) {
    throw new InvalidArgumentError('presigned URLs (query-string SigV4) are not re-signed');
  }
}

/** X-Amz-Date is a real UTC time, on the scope's date, within the skew bound. */
function checkDate(amzDate: string, scopeDate: string, o: ResignOptions): void {
  const m = AMZ_DATE.exec(amzDate);
  if (!m) throw new InvalidArgumentError('malformed X-Amz-Date (expected YYYYMMDDTHHMMSSZ)');
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, ...number[]];
  const t = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
  const back = new Date(t);
  if (
    back.getUTCMonth() !== mo! - 1 ||
    back.getUTCDate() !== d! ||
    back.getUTCHours() !== h! ||
    back.getUTCMinutes() !== mi! ||
    back.getUTCSeconds() !== s!
  ) {
    throw new InvalidArgumentError('malformed X-Amz-Date (not a calendar time)');
  }
  if (amzDate.slice(0, 8) !== scopeDate) {
    throw new InvalidArgumentError('the Credential scope date is not the date of X-Amz-Date');
  }
  const maxSkew = o.maxSkewMs ?? 15 * 60_000;
  if (Math.abs(o.clock.now() - t) > maxSkew) {
    throw new InvalidArgumentError(
      `X-Amz-Date is more than ${Math.round(maxSkew / 1000)} s from the proxy's clock`,
    );
  }
}

/** The payload hash kept as the client declared it, when it is one the proxy can carry. */
function checkPayloadMode(declared: string): string {
  if (HEX_SHA256.test(declared) || declared === UNSIGNED) return declared;
  if (declared === STREAMING_SIGNED || declared === STREAMING_UNSIGNED_TRAILER) return declared;
  if (declared.startsWith('STREAMING-')) {
    throw new InvalidArgumentError(
      `x-amz-content-sha256 ${declared.slice(0, 64)} is not supported (supported: a SHA-256, ` +
        `${UNSIGNED}, ${STREAMING_SIGNED}, ${STREAMING_UNSIGNED_TRAILER})`,
    );
  }
  throw new InvalidArgumentError('malformed x-amz-content-sha256');
}

function decodedLength(headers: Record<string, string | string[]>): number {
  const v = single(headers, 'x-amz-decoded-content-length');
  if (v === undefined || !/^\d{1,15}$/.test(v)) {
    throw new InvalidArgumentError(
      `${STREAMING_SIGNED} needs x-amz-decoded-content-length (a decimal byte count)`,
    );
  }
  return Number(v);
}

async function readBounded(body: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    total += b.length;
    if (total > max) {
      body.destroy();
      throw new InvalidArgumentError(
        `the request body is over ${max} bytes and has no x-amz-content-sha256 for the proxy to keep`,
      );
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}
