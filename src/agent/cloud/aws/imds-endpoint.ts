// The EC2 instance metadata service, version 2 only, as the AWS SDKs use it for credentials
// (docs/cloud-credentials.md "AWS"): `PUT /latest/api/token` with
// `X-aws-ec2-metadata-token-ttl-seconds` (1..21600, else 400) returns a session token bound to
// the calling process; every GET must carry it in `X-aws-ec2-metadata-token` (missing, expired,
// unknown or another process's: 401, which makes the SDK fetch a new token). Requests carrying
// `X-Forwarded-For` are refused with 403, as EC2 refuses such token PUTs: a proxy or an SSRF
// relaying a request is not the workload asking.
//
// `iam/security-credentials/` names the role: the first server workload of protocol `aws` the
// caller is granted (the server decides, ListGrantedServerWorkloads; EC2 attaches one role, and
// the SDK reads the whole body as one name). `iam/security-credentials/<name>` is the credentials
// document for that server workload, released for the caller like any credential.
import { isTesseraError } from '../../../core/errors.ts';
import type { AttestedCaller } from '../../attestation/caller.ts';
import type {
  CloudContext,
  CloudEndpoint,
  CloudRequest,
  CloudResponse,
} from '../cloud-endpoint.ts';
import { awsValue, imdsDocument } from './documents.ts';
import { ImdsTokens, parseTtl } from './imds-tokens.ts';

/** The SDKs drop a credential 5 minutes before it expires; serve one that outlives that. */
export const AWS_MIN_VALIDITY_MS = 6 * 60_000;

const TOKEN_PATH = '/latest/api/token';
const CREDENTIALS = '/latest/meta-data/iam/security-credentials/';
const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

const text = (
  status: number,
  body: string,
  headers: Record<string, string> = {},
): CloudResponse => ({
  status,
  headers: { 'content-type': 'text/plain', ...headers },
  body,
});

export function awsImdsEndpoint(tokens = new ImdsTokens()): CloudEndpoint {
  return {
    name: 'aws-imds',
    prefixes: ['/latest/'],
    async handle(req, ctx) {
      const refuse = (status: number, reason: string, fields: Record<string, unknown> = {}) => {
        ctx.log.warn(
          { endpoint: 'aws-imds', method: req.method, path: req.path, status, ...fields },
          `AWS IMDS request refused: ${reason}`,
        );
        return text(status, status === 401 ? 'Unauthorized' : reason);
      };
      if (req.headers['x-forwarded-for'] !== undefined) {
        return refuse(403, 'it carries X-Forwarded-For (a relayed request)');
      }
      if (req.path === TOKEN_PATH) {
        if (req.method !== 'PUT') return text(405, 'Method Not Allowed', { allow: 'PUT' });
        const ttl = parseTtl(req.headers[TTL_HEADER]);
        if (ttl === null) {
          return refuse(400, `${TTL_HEADER} must be an integer from 1 to 21600`);
        }
        const process = await pinned(req);
        if (process === null) return refuse(403, 'the calling process cannot be identified');
        const token = tokens.issue(process, ttl);
        return text(200, token, { [TTL_HEADER]: String(ttl) });
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return text(405, 'Method Not Allowed', { allow: 'GET' });
      }
      const process = await pinned(req);
      if (process === null) return refuse(403, 'the calling process cannot be identified');
      const check = tokens.check(req.headers[TOKEN_HEADER], process);
      if (check !== 'ok') {
        return refuse(401, tokenReason(check), { token: check });
      }
      return route(req, ctx, refuse);
    },
  };
}

/** The caller's process key, or null when the connection's peer is unknown. */
async function pinned(req: CloudRequest): Promise<string | null> {
  try {
    return await req.processKey();
  } catch (e) {
    if (isTesseraError(e)) return null;
    throw e;
  }
}

function tokenReason(check: string): string {
  switch (check) {
    case 'missing':
      return 'no X-aws-ec2-metadata-token (IMDSv2 session token) header';
    case 'foreign':
      return 'the session token was issued to another process';
    case 'expired':
      return 'the session token has expired';
    default:
      return 'the session token is not one this agent issued';
  }
}

type Refuse = (status: number, reason: string, fields?: Record<string, unknown>) => CloudResponse;

async function route(req: CloudRequest, ctx: CloudContext, refuse: Refuse): Promise<CloudResponse> {
  const p = req.path;
  if (p === '/latest/meta-data/' || p === '/latest/meta-data') return text(200, 'iam/');
  if (p === '/latest/meta-data/iam/' || p === '/latest/meta-data/iam') {
    return text(200, 'info\nsecurity-credentials/');
  }
  if (p === CREDENTIALS || p === '/latest/meta-data/iam/info') {
    const caller = await attested(req, refuse);
    if ('status' in caller) return caller;
    const names = await ctx.credentials.granted(caller, 'aws', req.signal);
    const role = names[0];
    if (role === undefined) {
      return refuse(404, 'the caller is granted no server workload of protocol aws', {
        pid: caller.process.pid,
      });
    }
    if (p === CREDENTIALS) return text(200, role);
    return {
      status: 200,
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ Code: 'Success', LastUpdated: new Date().toISOString(), Role: role }),
    };
  }
  if (p.startsWith(CREDENTIALS)) {
    const name = p.slice(CREDENTIALS.length).replace(/\/$/, '');
    const caller = await attested(req, refuse);
    if ('status' in caller) return caller;
    try {
      const served = await ctx.credentials.get(caller, { server: name, spiffeId: '' }, req.signal, {
        minValidityMs: AWS_MIN_VALIDITY_MS,
      });
      const v = awsValue(served.credential);
      if (!v) {
        return refuse(404, `server workload "${name}" does not release AWS credentials`);
      }
      return {
        status: 200,
        headers: { 'content-type': 'text/plain' },
        body: imdsDocument(v, Date.now()),
      };
    } catch (e) {
      if (!isTesseraError(e)) throw e;
      if (e.code === 'invalid_argument' || e.code === 'permission_denied') {
        return refuse(404, e.message, { pid: caller.process.pid });
      }
      return refuse(500, e.message, { pid: caller.process.pid });
    }
  }
  return text(404, 'Not Found');
}

/** The attested caller, or a 404 (EC2 without an instance profile) when it has no identity. */
async function attested(
  req: CloudRequest,
  refuse: Refuse,
): Promise<AttestedCaller | CloudResponse> {
  try {
    return await req.caller();
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return refuse(e.code === 'unavailable' ? 500 : 404, `the caller: ${e.message}`);
  }
}
