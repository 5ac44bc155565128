// The GCE metadata server, as google-auth-library and gcp-metadata use it
// (docs/cloud-credentials.md, "Google Cloud: the workload side"): `GCE_METADATA_HOST` points the
// SDK here, and it finds what it finds on a Compute Engine VM —
//   /computeMetadata/v1/instance                          the SDK's "am I on GCE" probe
//   /computeMetadata/v1/instance/service-accounts/{a}/token     access token (scopes ignored:
//       the server workload's credential provider decides them)
//   /computeMetadata/v1/instance/service-accounts/{a}/identity  ?audience=A&format=full: an
//       identity token, the caller's JWT-SVID for A (also the external-account credential_source)
//   /computeMetadata/v1/instance/service-accounts/{a}/email, /aliases, directory listings
//       (text, or JSON with ?recursive=true)
//   /computeMetadata/v1/project/project-id, /numeric-project-id, /universe/universe-domain
// Account `default` is the server workload in `cloud.gcp.server_workload` (and the configured
// email its alias) or, when that is empty, the one gcp server workload the caller is granted; any other account name is a server workload name. As on GCE, requests must
// carry `Metadata-Flavor: Google` (403 otherwise), requests relayed by a proxy are refused (403),
// and every answer carries `Metadata-Flavor: Google`.
import { NAME_PATTERN } from '../../../core/access.ts';
import type {
  CloudContext,
  CloudEndpoint,
  CloudRequest,
  CloudResponse,
} from '../cloud-endpoint.ts';
import {
  callerJwtSvid,
  grantedServerWorkload,
  proxyHeader,
  releaseToken,
  secondsLeft,
  type Failure,
} from '../cloud-token.ts';

export const BASE = '/computeMetadata/v1';
export const UNIVERSE_DOMAIN = 'googleapis.com';
/** Longest identity-token audience accepted. */
export const MAX_AUDIENCE_BYTES = 1024;

export interface GceMetadataOptions {
  /** The server workload of account `default`; "" = none (its token is 404). */
  readonly serverWorkload: string;
  /** "" = the key is absent (404). */
  readonly projectId: string;
  readonly projectNumber: string;
  /** The email of account `default`; "" = absent. */
  readonly email: string;
  readonly now?: () => number;
}

type Answer = CloudResponse | Promise<CloudResponse>;

export function gceMetadataEndpoint(o: GceMetadataOptions): CloudEndpoint {
  const now = o.now ?? Date.now;
  return {
    name: 'gcp-metadata',
    prefixes: [BASE],
    handle: async (req, ctx) => withFlavor(await answer(o, now, req, ctx)),
  };
}

function answer(
  o: GceMetadataOptions,
  now: () => number,
  req: CloudRequest,
  ctx: CloudContext,
): Answer {
  if (req.headers['metadata-flavor'] !== 'Google') {
    return forbidden('Missing Metadata-Flavor:Google header.');
  }
  const proxied = proxyHeader(req);
  if (proxied) {
    ctx.log.warn(
      { endpoint: 'gcp-metadata', header: proxied },
      'refused a proxied metadata request',
    );
    return forbidden(
      `Request with ${proxied} header refused: the metadata server serves local callers directly.`,
    );
  }
  if (req.method !== 'GET') return status(405, 'Method not allowed.', { allow: 'GET' });
  const rest =
    req.path === BASE
      ? ''
      : req.path.startsWith(`${BASE}/`)
        ? req.path.slice(BASE.length + 1)
        : null;
  if (rest === null) return notFound();
  const recursive = req.query.get('recursive') === 'true';
  const parts = rest.split('/');
  const dir = rest === '' || rest.endsWith('/');
  if (dir) parts.pop();
  const [top, ...sub] = parts;
  switch (top) {
    case undefined:
      return recursive ? notFound() : listing(['instance/', 'project/', 'universe/']);
    case 'project':
      return project(o, sub, recursive);
    case 'universe':
      if (sub.length === 0)
        return recursive ? json({ universeDomain: UNIVERSE_DOMAIN }) : listing(['universe-domain']);
      return sub.length === 1 && sub[0] === 'universe-domain'
        ? textAnswer(UNIVERSE_DOMAIN)
        : notFound();
    case 'instance':
      if (sub.length === 0) {
        return recursive ? json({ serviceAccounts: accounts(o) }) : listing(['service-accounts/']);
      }
      if (sub[0] !== 'service-accounts') return notFound();
      return serviceAccounts(o, now, req, ctx, sub.slice(1), recursive);
    default:
      return notFound();
  }
}

function project(o: GceMetadataOptions, sub: string[], recursive: boolean): CloudResponse {
  const keys: Record<string, string> = {};
  if (o.projectNumber !== '') keys['numeric-project-id'] = o.projectNumber;
  if (o.projectId !== '') keys['project-id'] = o.projectId;
  if (sub.length === 0) {
    if (!recursive) return listing(Object.keys(keys));
    return json({
      ...(o.projectNumber !== '' && { numericProjectId: Number(o.projectNumber) }),
      ...(o.projectId !== '' && { projectId: o.projectId }),
    });
  }
  const v = sub.length === 1 ? keys[sub[0] ?? ''] : undefined;
  return v === undefined ? notFound() : textAnswer(v);
}

/** The accounts as GCE lists them recursively: default, and its email as an alias. */
function accounts(o: GceMetadataOptions): Record<string, unknown> {
  const info = { aliases: ['default'], email: o.email === '' ? 'default' : o.email };
  return o.email === '' ? { default: info } : { default: info, [o.email]: info };
}

function serviceAccounts(
  o: GceMetadataOptions,
  now: () => number,
  req: CloudRequest,
  ctx: CloudContext,
  sub: string[],
  recursive: boolean,
): Answer {
  const [account, key, ...more] = sub;
  if (account === undefined) {
    return recursive ? json(accounts(o)) : listing(Object.keys(accounts(o)).map((a) => `${a}/`));
  }
  const server = serverOf(o, account);
  if (server === null || more.length > 0) return notFound();
  const isDefault = account === 'default' || account === o.email;
  const email = isDefault ? o.email : '';
  switch (key) {
    case undefined:
      if (recursive)
        return json({ aliases: [isDefault ? 'default' : account], email: email || account });
      return listing(['aliases', ...(email ? ['email'] : []), 'identity', 'token']);
    case 'aliases':
      return textAnswer(isDefault ? 'default' : account);
    case 'email':
      return email === '' ? notFound() : textAnswer(email);
    case 'token':
      return token(now, req, ctx, server);
    case 'identity':
      return identity(req, ctx);
    default:
      return notFound();
  }
}

/**
 * The server workload of an account: "" for a default without one (then the one the caller is
 * granted, grantedServerWorkload); null when unknown.
 */
function serverOf(o: GceMetadataOptions, account: string): string | null {
  if (account === 'default' || (o.email !== '' && account === o.email)) return o.serverWorkload;
  return Buffer.byteLength(account) <= 63 && NAME_PATTERN.test(account) ? account : null;
}

async function token(
  now: () => number,
  req: CloudRequest,
  ctx: CloudContext,
  server: string,
): Promise<CloudResponse> {
  const scopes = req.query.get('scopes') ?? '';
  if (scopes.length > 4096) return status(400, 'scopes: longer than 4096 characters.');
  const chosen =
    server === ''
      ? await grantedServerWorkload(req, ctx, 'gcp-metadata', 'gcp', 'cloud.gcp.server_workload')
      : ({ ok: true, server } as const);
  if (!chosen.ok) return failure(chosen.why, chosen.message);
  const r = await releaseToken(req, ctx, 'gcp-metadata', chosen.server);
  if (!r.ok) return failure(r.why, r.message);
  return json({
    access_token: r.token,
    expires_in: secondsLeft(r.expiresAt, now()),
    token_type: 'Bearer',
  });
}

async function identity(req: CloudRequest, ctx: CloudContext): Promise<CloudResponse> {
  const audience = req.query.get('audience') ?? '';
  if (audience === '') return status(400, 'non-empty audience parameter required');
  if (Buffer.byteLength(audience) > MAX_AUDIENCE_BYTES || /[\u0000-\u001f\u007f]/.test(audience)) {
    return status(400, `audience: at most ${MAX_AUDIENCE_BYTES} bytes of printable characters`);
  }
  const format = req.query.get('format') ?? 'standard';
  if (format !== 'standard' && format !== 'full') return status(400, 'format: standard or full');
  const r = await callerJwtSvid(req, ctx, 'gcp-metadata', audience);
  if (!r.ok) return failure(r.why, r.message);
  return textAnswer(r.token);
}

/** How a failure reads on GCE: denied → 403, nothing to serve → 404, the cloud down → 503. */
function failure(why: Failure, message: string): CloudResponse {
  switch (why) {
    case 'invalid':
      return status(400, message);
    case 'no-identity':
    case 'denied':
      return forbidden(message);
    case 'unavailable':
      return status(503, message);
    case 'none':
      return status(404, message);
  }
}

function withFlavor(r: CloudResponse): CloudResponse {
  return { ...r, headers: { ...r.headers, 'metadata-flavor': 'Google' } };
}

const textAnswer = (body: string): CloudResponse => ({
  status: 200,
  headers: { 'content-type': 'application/text' },
  body,
});
const listing = (names: readonly string[]): CloudResponse =>
  textAnswer(names.map((n) => `${n}\n`).join(''));
const json = (v: unknown): CloudResponse => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(v),
});
const status = (
  code: number,
  message: string,
  headers: Record<string, string> = {},
): CloudResponse => ({
  status: code,
  headers: { 'content-type': 'text/plain; charset=utf-8', ...headers },
  body: `${message}\n`,
});
const forbidden = (message: string) => status(403, message);
const notFound = () => status(404, 'Not found.');
