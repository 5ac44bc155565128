// The credential API as loopback HTTP: GET /v1/credentials/{server_workload}[?spiffe_id=ID] with
// the header `Tessera-Credential: true`, for workloads that speak HTTP but not gRPC (curl, any
// SDK). Served on a loopback address only; the caller is the process holding the client end of
// the TCP connection, found through the kernel's socket tables and pinned at accept
// (doors/loopback-http.ts, attestation/tcp-peer.ts), then attested like a Workload API caller.
//
// Refused, in this order (an ordered list of small steps, see `steps`):
//   - anything but GET (405), an over-long URL (414), another path (404), unknown or repeated
//     query parameters (400);
//   - a request without exactly `Tessera-Credential: true` (400, naming the header): a browser or
//     a server tricked into fetching a URL (SSRF) cannot add it, as cloud metadata endpoints
//     require `Metadata-Flavor: Google` or `Metadata: true`;
//   - a request carrying Forwarded / X-Forwarded-For / X-Real-IP / Via (400): it came through a
//     proxy, so the process we would attest is the proxy, not the client it speaks for;
//   - a caller that cannot be identified unambiguously (several holders of the socket, a
//     connection missing from the tables, ...) or has no identity (403).
// Answers are JSON with `Cache-Control: no-store`; a denial is 403 naming the reason, policy and
// failed condition, never a secret.
import type http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { CredentialValue } from '../../core/access.ts';
import { isTesseraError } from '../../core/errors.ts';
import { HTTP_STATUS } from '../../wire/http-status.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import { type DoorCall, listenLoopbackHttp } from '../doors/loopback-http.ts';
import type { ReleasedCredential } from '../cache/credential-cache.ts';
import type { WorkloadApiLogger } from '../workload-api/log.ts';
import { CredentialDeniedError, type CredentialService } from './credential-service.ts';

export const CREDENTIAL_HEADER = 'tessera-credential';
export const PATH_PREFIX = '/v1/credentials/';
/** Longest request target (path and query) accepted. */
export const MAX_URL_BYTES = 2048;
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip', 'via'];

export interface CredentialHttpOptions {
  /** A loopback IP literal (127.0.0.0/8 or ::1) and a port (0: any free one). */
  readonly host: string;
  readonly port: number;
  readonly attestation: AttestationService;
  readonly credentials: CredentialService;
  readonly log: WorkloadApiLogger;
  /** Connections served at once; more are closed at accept. Default 256. */
  readonly maxConnections?: number;
}

export interface CredentialHttp {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts listening; refuses a non-loopback address before binding anything. */
export async function startCredentialHttp(o: CredentialHttpOptions): Promise<CredentialHttp> {
  const door = await listenLoopbackHttp({
    host: o.host,
    port: o.port,
    setting: 'credentials.http_listen',
    name: 'credential HTTP',
    attestation: o.attestation,
    log: o.log,
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    handle: (req, res, call) => serve(o, req, res, call),
  });
  o.log.info({ address: `${door.host}:${door.port}` }, 'credential HTTP API listening');
  return door;
}

/** An answer ending the request: status and JSON body. */
class HttpAnswer extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
    super(String(body['error'] ?? status));
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

interface Ask {
  readonly server: string;
  readonly spiffeId: string;
}

async function serve(
  o: CredentialHttpOptions,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  { peer, signal }: DoorCall,
): Promise<void> {
  try {
    const ask = checkRequest(req);
    const p = await peer;
    if (!p.ok) {
      throw new HttpAnswer(403, { error: `could not attest the caller: ${p.reason}` });
    }
    const caller = await o.attestation.attest(p, signal, { reuse: true });
    const served = await o.credentials.get(caller, ask, signal);
    send(res, 200, credentialJson(served.credential));
  } catch (e) {
    if (signal.aborted) return;
    const a = answerOf(e, o.log);
    send(res, a.status, a.body, a.headers);
  }
}

/** The request's steps before any attestation: method, size, path, query, headers. */
function checkRequest(req: http.IncomingMessage): Ask {
  if (req.method !== 'GET') {
    throw new HttpAnswer(
      405,
      { error: `method ${req.method} not allowed: use GET` },
      { allow: 'GET' },
    );
  }
  const target = req.url ?? '';
  if (Buffer.byteLength(target) > MAX_URL_BYTES) {
    throw new HttpAnswer(414, { error: `request target longer than ${MAX_URL_BYTES} bytes` });
  }
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (
    !path.startsWith(PATH_PREFIX) ||
    path.length === PATH_PREFIX.length ||
    path.indexOf('/', PATH_PREFIX.length) >= 0
  ) {
    throw new HttpAnswer(404, { error: 'not found: use GET /v1/credentials/{server_workload}' });
  }
  const server = decode(path.slice(PATH_PREFIX.length), 'server_workload');
  const spiffeId = queryParams(q < 0 ? '' : target.slice(q + 1));
  if (
    req.headersDistinct[CREDENTIAL_HEADER]?.length !== 1 ||
    req.headers[CREDENTIAL_HEADER] !== 'true'
  ) {
    throw new HttpAnswer(400, {
      error: 'header "Tessera-Credential: true" required (it protects against request forgery)',
    });
  }
  const proxied = PROXY_HEADERS.find((h) => req.headers[h] !== undefined);
  if (proxied) {
    throw new HttpAnswer(400, {
      error: `request came through a proxy (${proxied} header): the credential API serves only local callers directly`,
    });
  }
  return { server, spiffeId };
}

/** The one allowed parameter, `spiffe_id` (at most once); "" when absent. */
function queryParams(query: string): string {
  if (query === '') return '';
  const params = new URLSearchParams(query);
  let spiffeId: string | undefined;
  for (const [k, v] of params) {
    if (k !== 'spiffe_id') {
      throw new HttpAnswer(400, {
        error: `unknown query parameter "${k.slice(0, 64)}": only spiffe_id`,
      });
    }
    if (spiffeId !== undefined)
      throw new HttpAnswer(400, { error: 'spiffe_id given more than once' });
    spiffeId = v;
  }
  return spiffeId ?? '';
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpAnswer(400, { error: `${what}: malformed percent-encoding` });
  }
}

/** The one place errors become HTTP answers; internal faults are logged, not shown. */
function answerOf(e: unknown, log: WorkloadApiLogger): HttpAnswer {
  if (e instanceof HttpAnswer) return e;
  if (e instanceof CredentialDeniedError) {
    const d = e.denial;
    return new HttpAnswer(403, {
      error: e.message,
      spiffe_id: e.spiffeId,
      server_workload: e.server,
      reason: d.reason,
      policy: d.policy,
      failed_condition: d.failedCondition,
      correlation_id: d.correlationId,
    });
  }
  if (isTesseraError(e) && e.code !== 'internal') {
    if (e.code === 'unavailable') log.warn({ cause: causeText(e.cause) }, e.message);
    return new HttpAnswer(HTTP_STATUS[e.code], { error: e.message });
  }
  const correlationId = randomUUID();
  log.error({ correlationId, err: causeText(e) }, 'credential HTTP request failed');
  return new HttpAnswer(500, { error: `internal error (correlation id ${correlationId})` });
}

function causeText(e: unknown): string | undefined {
  if (e === undefined) return undefined;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** The credential as JSON (docs/access.md): the value's fields beside when and how to use it. */
export function credentialJson(r: ReleasedCredential): Record<string, unknown> {
  return {
    spiffe_id: r.spiffeId,
    server_workload: r.server,
    ...valueJson(r.credential.value),
    expires_at:
      r.credential.expiresAt === null ? null : new Date(r.credential.expiresAt).toISOString(),
    present: r.present,
    lease_id: r.credential.leaseId,
    correlation_id: r.correlationId,
  };
}

function valueJson(v: CredentialValue): Record<string, unknown> {
  switch (v.kind) {
    case 'token':
      return { token: v.token };
    case 'password':
      return { username: v.username, password: v.password };
    case 'aws':
      return {
        aws: {
          access_key_id: v.accessKeyId,
          secret_access_key: v.secretAccessKey,
          session_token: v.sessionToken,
        },
      };
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
