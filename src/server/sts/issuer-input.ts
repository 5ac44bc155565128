// An issuer registered through the admin API, as the request gives it (untrusted, from the
// caller): an https issuer URL, its audiences, and its keys as a JWK Set document or by OIDC
// discovery. Checked here, each refusal naming the field; the registry stores what passes.
import { InvalidArgumentError } from '../../core/errors.ts';
import { parseJwks, type IssuerKeys } from './issuers.ts';
import { parseJsonDocument } from './json-document.ts';

export const MAX_AUDIENCES = 32;
export const MAX_JWKS_DOCUMENT_BYTES = 256 * 1024;

export interface AddIssuerInput {
  issuer: string;
  audiences: readonly string[];
  /** JWK Set JSON text; exactly one of jwks and discovery. */
  jwks?: string;
  discovery?: boolean;
}

export interface IssuerFields {
  readonly issuer: string;
  readonly audiences: string[];
  /** Keys from the request's JWK Set; otherwise by discovery. */
  readonly hasJwks: boolean;
}

/** The fields checked before anything is read from the store. */
export function checkIssuerFields(input: AddIssuerInput): IssuerFields {
  const issuer = httpsIssuer(input.issuer);
  const audiences = [...new Set(input.audiences)];
  if (audiences.length === 0 || audiences.length > MAX_AUDIENCES)
    throw new InvalidArgumentError(`audiences: between 1 and ${MAX_AUDIENCES} required`);
  for (const a of audiences)
    if (a === '' || a.length > 256)
      throw new InvalidArgumentError('audiences: each must be 1 to 256 characters');
  const hasJwks = input.jwks !== undefined && input.jwks !== '';
  if (hasJwks === Boolean(input.discovery))
    throw new InvalidArgumentError('exactly one of jwks and discovery is required');
  return { issuer, audiences, hasJwks };
}

/**
 * The issuer's keys: the request's JWK Set (stored as normalised JSON), or the keys discovery
 * finds now, so that a typo or an issuer mismatch is refused here rather than at exchange time.
 */
export async function issuerKeys(
  input: AddIssuerInput,
  f: IssuerFields,
  discover: (issuer: string) => Promise<IssuerKeys>,
): Promise<{ jwks: string; discovered?: IssuerKeys }> {
  if (!f.hasJwks) {
    let discovered: IssuerKeys;
    try {
      discovered = await discover(f.issuer);
    } catch (e) {
      throw new InvalidArgumentError(`discovery: ${(e as Error).message}`);
    }
    if (discovered.size === 0)
      throw new InvalidArgumentError('discovery: the JWKS holds no usable key');
    return { jwks: '', discovered };
  }
  const doc = parseJsonDocument(input.jwks ?? '', 'jwks', MAX_JWKS_DOCUMENT_BYTES);
  if (parseJwks(doc, 'jwks').size === 0)
    throw new InvalidArgumentError('jwks: holds no usable signing key');
  return { jwks: JSON.stringify(doc) };
}

function httpsIssuer(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError(`issuer: "${v.slice(0, 256)}" is not a URL`);
  }
  if (v.length > 2048) throw new InvalidArgumentError('issuer: longer than 2048 characters');
  if (u.protocol !== 'https:') throw new InvalidArgumentError('issuer: must be an https URL');
  if (u.search || u.hash || u.username || u.password)
    throw new InvalidArgumentError('issuer: must not have a query, fragment or userinfo');
  return v;
}
