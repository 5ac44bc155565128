// General JWT signing for tokens that are not JWT-SVIDs (e.g. RFC 9068 access tokens): arbitrary
// JSON claims and a caller-chosen `typ` header. Header {alg, kid, typ}; the key type picks alg.
import { InvalidArgumentError } from '../../core/errors.ts';
import type { ManagedKey } from '../key-manager.ts';
import { jwtAlgFor } from './alg.ts';

export interface SignJwtOptions {
  readonly key: ManagedKey;
  readonly kid: string;
  /** e.g. "at+jwt" (RFC 9068 §2.1). */
  readonly typ: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

export async function signJwt(o: SignJwtOptions): Promise<string> {
  if (typeof o.kid !== 'string' || o.kid === '')
    throw new InvalidArgumentError('JWT kid is required');
  if (typeof o.typ !== 'string' || o.typ === '')
    throw new InvalidArgumentError('JWT typ is required');
  const c = o.claims;
  if (
    !Number.isInteger(c.exp) ||
    !Number.isInteger(c.iat) ||
    (c.exp as number) <= (c.iat as number)
  )
    throw new InvalidArgumentError('JWT exp and iat must be integer seconds with exp > iat');
  const header = { alg: jwtAlgFor(o.key.type), kid: o.kid, typ: o.typ };
  const input = Buffer.from(b64json(header) + '.' + b64json(c), 'latin1');
  const sig = o.key.signSync
    ? o.key.signSync(input, 'ieee-p1363')
    : await o.key.sign(input, 'ieee-p1363');
  return input.toString('latin1') + '.' + Buffer.from(sig).toString('base64url');
}

function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
}
