// What the GCE and Azure endpoints ask of the agent, with every failure sorted into the few
// outcomes a cloud metadata service can express (no identity, denied, unavailable, bad request)
// and logged once, clearly, naming the endpoint, the server workload and the caller — never a
// token. The endpoints render the outcome in their platform's status codes and shapes.
import { PermissionDeniedError, isTesseraError, type ErrorCode } from '../../core/errors.ts';
import { CredentialDeniedError } from '../credentials/credential-service.ts';
import type { CloudContext, CloudRequest } from './cloud-endpoint.ts';

/** `none`: nothing to serve (no server workload for the default identity). */
export type Failure = 'no-identity' | 'denied' | 'unavailable' | 'invalid' | 'none';

export type Outcome<T> =
  | ({ readonly ok: true } & T)
  | { readonly ok: false; readonly why: Failure; readonly message: string };

export interface ReleasedToken {
  readonly token: string;
  /** Epoch ms; null when the provider's token does not expire. */
  readonly expiresAt: number | null;
  readonly spiffeId: string;
}

/** The bearer token the server releases for (caller, `server`), from the agent cache when fresh. */
export async function releaseToken(
  req: CloudRequest,
  ctx: CloudContext,
  endpoint: string,
  server: string,
): Promise<Outcome<ReleasedToken>> {
  try {
    const caller = await req.caller();
    const served = await ctx.credentials.get(caller, { server, spiffeId: '' }, req.signal);
    const r = served.credential;
    if (r.credential.value.kind !== 'token') {
      const message = `server workload "${server}" released a ${r.credential.value.kind} credential, not a token: its credential provider does not fit a cloud endpoint`;
      ctx.log.warn({ endpoint, server, spiffeId: r.spiffeId }, message);
      return { ok: false, why: 'unavailable', message };
    }
    return {
      ok: true,
      token: r.credential.value.token,
      expiresAt: r.credential.expiresAt,
      spiffeId: r.spiffeId,
    };
  } catch (e) {
    return failed(e, ctx, { endpoint, server }, 'no credential served');
  }
}

/**
 * The server workload behind a cloud's default identity when the agent config names none
 * (`configKey`): the one server workload of `protocol` the server grants the caller now
 * (ListGrantedServerWorkloads, the decision a release makes). None granted: `none`; several:
 * `invalid`, naming them — picking one silently could hand the workload an identity it did not
 * expect; it names one (GCE account, Azure `client_id`) or the agent config does.
 */
export async function grantedServerWorkload(
  req: CloudRequest,
  ctx: CloudContext,
  endpoint: string,
  protocol: string,
  configKey: string,
): Promise<Outcome<{ readonly server: string }>> {
  let names: string[];
  try {
    names = await ctx.credentials.granted(await req.caller(), protocol, req.signal);
  } catch (e) {
    return failed(e, ctx, { endpoint, protocol }, 'no credential served');
  }
  const [only] = names;
  if (names.length === 1 && only !== undefined) return { ok: true, server: only };
  const message =
    names.length === 0
      ? `the caller is granted no server workload of protocol ${protocol} (and ${configKey} is not set)`
      : `the caller is granted several server workloads of protocol ${protocol} (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}): set ${configKey}, or name one`;
  ctx.log.warn({ endpoint, protocol }, `no credential served: ${message}`);
  return { ok: false, why: names.length === 0 ? 'none' : 'invalid', message };
}

/** A JWT-SVID of the caller for `audience` (its first identity's, as FetchJWTSVID gives). */
export async function callerJwtSvid(
  req: CloudRequest,
  ctx: CloudContext,
  endpoint: string,
  audience: string,
): Promise<Outcome<{ readonly token: string; readonly spiffeId: string }>> {
  try {
    const caller = await req.caller();
    const [svid] = await ctx.identities.fetchJwtSvids(caller, [audience], '');
    if (!svid) throw new PermissionDeniedError('no identity issued');
    return { ok: true, token: svid.token, spiffeId: svid.spiffeId };
  } catch (e) {
    return failed(e, ctx, { endpoint }, 'no identity token served');
  }
}

const WHY: Partial<Record<ErrorCode, Failure>> = {
  permission_denied: 'no-identity',
  invalid_argument: 'invalid',
  unavailable: 'unavailable',
  resource_exhausted: 'unavailable',
  failed_precondition: 'unavailable',
  not_found: 'denied',
};

/** Sorts an error into an outcome and logs it; an internal fault is rethrown (→ 500, logged). */
function failed(
  e: unknown,
  ctx: CloudContext,
  fields: Record<string, string>,
  what: string,
): { ok: false; why: Failure; message: string } {
  if (e instanceof CredentialDeniedError) {
    ctx.log.warn(
      { ...fields, spiffeId: e.spiffeId, reason: e.denial.reason, policy: e.denial.policy },
      `${what}: ${e.message}`,
    );
    return { ok: false, why: 'denied', message: e.message };
  }
  const code = isTesseraError(e) ? e.code : undefined;
  const why = code === undefined ? undefined : WHY[code];
  if (why === undefined) throw e;
  const message = (e as Error).message;
  ctx.log.warn({ ...fields, code }, `${what}: ${message}`);
  return { ok: false, why, message };
}

/** Whole seconds from `now` until `expiresAt` (an hour when the token does not expire). */
export function secondsLeft(expiresAt: number | null, now: number): number {
  if (expiresAt === null) return 3600;
  return Math.max(0, Math.floor((expiresAt - now) / 1000));
}

/** Headers that mean the request was relayed by a proxy (SSRF through a forwarding service). */
const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'via'] as const;

/** The first proxy header on the request, or undefined. */
export function proxyHeader(req: CloudRequest): string | undefined {
  return PROXY_HEADERS.find((h) => req.headers[h] !== undefined);
}
