// AWS Signature Version 4 arithmetic (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4):
// the signing key chain, the strings to sign for a request and for one aws-chunked chunk. Pure
// functions over node:crypto; the secret never leaves them except as an HMAC key.
import { createHash, createHmac } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
const CHUNK_ALGORITHM = 'AWS4-HMAC-SHA256-PAYLOAD';
/** SHA-256 of the empty string: a chunk's (absent) headers. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The credential scope: date (YYYYMMDD), region, service. */
export interface SigV4Scope {
  readonly date: string;
  readonly region: string;
  readonly service: string;
}

export function scopeString(s: SigV4Scope): string {
  return `${s.date}/${s.region}/${s.service}/aws4_request`;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export function signingKey(secretAccessKey: string, s: SigV4Scope): Buffer {
  let key = createHmac('sha256', `AWS4${secretAccessKey}`).update(s.date).digest();
  for (const part of [s.region, s.service, 'aws4_request']) {
    key = createHmac('sha256', key).update(part).digest();
  }
  return key;
}

export function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

/** The request's string to sign, from its canonical request. */
export function requestStringToSign(amzDate: string, s: SigV4Scope, canonicalRequest: string) {
  return `${ALGORITHM}\n${amzDate}\n${scopeString(s)}\n${sha256Hex(canonicalRequest)}`;
}

/** One chunk's string to sign: chained to the previous signature (the seed for the first). */
export function chunkStringToSign(
  amzDate: string,
  s: SigV4Scope,
  previousSignature: string,
  chunkSha256: string,
): string {
  return [
    CHUNK_ALGORITHM,
    amzDate,
    scopeString(s),
    previousSignature,
    EMPTY_SHA256,
    chunkSha256,
  ].join('\n');
}
