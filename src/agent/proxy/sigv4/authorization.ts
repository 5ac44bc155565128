// The Authorization header of a SigV4 request, parsed strictly. Untrusted: it comes from the
// application, signed with placeholder keys the proxy does not know, so nothing in it is
// verified — only its shape, which the re-signed request keeps (scope, signed headers).
import { InvalidArgumentError } from '../../../core/errors.ts';
import { ALGORITHM, scopeString, type SigV4Scope } from '../../../crypto/aws-sigv4/signing.ts';

export interface SigV4Authorization {
  readonly accessKeyId: string;
  readonly scope: SigV4Scope;
  /** Lower-case header names, sorted, unique. */
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

const MAX_AUTHORIZATION = 4096;
const MAX_SIGNED_HEADERS = 64;
const ACCESS_KEY_ID = /^[A-Za-z0-9_.+=-]{1,128}$/;
const DATE = /^\d{8}$/;
const REGION = /^[a-z0-9-]{1,32}$/;
const SERVICE = /^[a-z0-9-]{1,64}$/;
/** An HTTP field name (RFC 9110 token), lower case as SigV4 writes it. */
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const SIGNATURE = /^[0-9a-f]{64}$/;

function malformed(what: string): InvalidArgumentError {
  return new InvalidArgumentError(`malformed SigV4 Authorization header: ${what}`);
}

/** `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=HEX` */
export function parseAuthorization(value: string): SigV4Authorization {
  if (value.length > MAX_AUTHORIZATION) throw malformed(`longer than ${MAX_AUTHORIZATION} bytes`);
  const space = value.indexOf(' ');
  const algorithm = space < 0 ? value : value.slice(0, space);
  if (algorithm !== ALGORITHM) {
    throw malformed(`algorithm ${JSON.stringify(algorithm.slice(0, 40))} (expected ${ALGORITHM})`);
  }
  const fields = new Map<string, string>();
  for (const part of value.slice(space + 1).split(',')) {
    const item = part.trim();
    const eq = item.indexOf('=');
    if (eq <= 0)
      throw malformed(`component ${JSON.stringify(item.slice(0, 40))} is not NAME=VALUE`);
    const name = item.slice(0, eq);
    if (name !== 'Credential' && name !== 'SignedHeaders' && name !== 'Signature') {
      throw malformed(`unknown component ${JSON.stringify(name.slice(0, 40))}`);
    }
    if (fields.has(name)) throw malformed(`${name} appears twice`);
    fields.set(name, item.slice(eq + 1));
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined) throw malformed('no Credential');
  if (signedHeaders === undefined) throw malformed('no SignedHeaders');
  if (signature === undefined) throw malformed('no Signature');
  if (!SIGNATURE.test(signature)) throw malformed('Signature is not 64 lower-case hex digits');
  return {
    ...parseCredential(credential),
    signedHeaders: parseSignedHeaders(signedHeaders),
    signature,
  };
}

function parseCredential(value: string): { accessKeyId: string; scope: SigV4Scope } {
  const parts = value.split('/');
  if (parts.length !== 5)
    throw malformed('Credential is not AKID/DATE/REGION/SERVICE/aws4_request');
  const [accessKeyId, date, region, service, terminator] = parts as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (!ACCESS_KEY_ID.test(accessKeyId)) throw malformed('Credential access key id');
  if (!DATE.test(date)) throw malformed('Credential scope date (expected YYYYMMDD)');
  if (!REGION.test(region)) throw malformed('Credential scope region');
  if (!SERVICE.test(service)) throw malformed('Credential scope service');
  if (terminator !== 'aws4_request')
    throw malformed('Credential scope does not end in aws4_request');
  return { accessKeyId, scope: { date, region, service } };
}

function parseSignedHeaders(value: string): string[] {
  const names = value.split(';');
  if (names.length > MAX_SIGNED_HEADERS)
    throw malformed(`more than ${MAX_SIGNED_HEADERS} SignedHeaders`);
  for (const [i, name] of names.entries()) {
    if (!HEADER_NAME.test(name)) {
      throw malformed(`SignedHeaders entry ${JSON.stringify(name.slice(0, 40))}`);
    }
    const before = names[i - 1];
    if (before !== undefined && before >= name)
      throw malformed('SignedHeaders not sorted and unique');
  }
  for (const required of ['host', 'x-amz-date']) {
    if (!names.includes(required)) throw malformed(`SignedHeaders does not include ${required}`);
  }
  return names;
}

export function formatAuthorization(a: SigV4Authorization): string {
  return (
    `${ALGORITHM} Credential=${a.accessKeyId}/${scopeString(a.scope)}, ` +
    `SignedHeaders=${a.signedHeaders.join(';')}, Signature=${a.signature}`
  );
}
