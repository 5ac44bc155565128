// A Workload API client (gRPC over HTTP/2 cleartext on a Unix socket or TCP). Every call carries
// the `workload.spiffe.io: true` security header; responses are parsed into typed objects.
import net from 'node:net';
import { createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { InvalidArgumentError, UnavailableError } from '../../core/errors.ts';
import { SpiffeWorkloadAPI } from '../../../proto/gen/spiffe/workload_pb.js';
import { Credentials } from '../../../proto/gen/tessera/access/v1/credentials_pb.js';
import { IdentityDocumentService } from '../../../proto/gen/tessera/identity/v1/document_pb.js';
import {
  credentialDenied,
  parseCredential,
  type CredentialParams,
  type WorkloadCredential,
} from './credential.ts';
import { resolveEndpoint, type WorkloadEndpoint } from './endpoint.ts';
import { toWorkloadError } from './errors.ts';
import { parseJwtBundles, parseJwtSvid, parseX509Bundles, parseX509Context } from './parse.ts';
import type {
  JwtBundleSet,
  JwtSvid,
  ValidatedJwtSvid,
  X509BundleSet,
  X509Context,
} from './types.ts';

export const SECURITY_HEADER = 'workload.spiffe.io';
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface WorkloadClientOptions {
  /** Explicit endpoint URI (unix:///path or tcp://IP:port); wins over `env`. */
  readonly address?: string;
  /** The value of SPIFFE_ENDPOINT_SOCKET (see defaultEndpoint() to read it from process.env). */
  readonly env?: string | undefined;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Deadline for a unary call or for the first message of a fetch (ms). */
  readonly timeoutMs?: number;
}

export interface JwtSvidParams {
  /** One or more audiences (required). */
  readonly audience: string | readonly string[];
  /** Only this identity's JWT-SVID; default: all (the first is the default identity). */
  readonly spiffeId?: string;
}

const securityHeader: Interceptor = (next) => (req) => {
  req.header.set(SECURITY_HEADER, 'true');
  return next(req);
};

function dial(ep: WorkloadEndpoint): () => net.Socket {
  return ep.kind === 'unix'
    ? () => net.connect(ep.path)
    : () => net.connect({ host: ep.host, port: ep.port });
}

export class WorkloadClient {
  readonly endpoint: WorkloadEndpoint;
  readonly #sessions: Http2SessionManager;
  readonly #api: Client<typeof SpiffeWorkloadAPI>;
  readonly #credentials: Client<typeof Credentials>;
  readonly #documents: Client<typeof IdentityDocumentService>;
  readonly #closing = new AbortController();

  constructor(o: WorkloadClientOptions = {}) {
    this.endpoint = resolveEndpoint(o);
    this.#sessions = new Http2SessionManager(
      'http://localhost',
      {},
      {
        createConnection: dial(this.endpoint),
      },
    );
    const transport = createGrpcTransport({
      baseUrl: 'http://localhost',
      readMaxBytes: MAX_MESSAGE_BYTES,
      sessionManager: this.#sessions,
      interceptors: [securityHeader],
    });
    this.#api = createClient(SpiffeWorkloadAPI, transport);
    this.#credentials = createClient(Credentials, transport);
    this.#documents = createClient(IdentityDocumentService, transport);
  }

  /**
   * A signed identity document for this process (docs/identity-document.md): a JWT signed by the
   * trust domain's JWT authority with the caller's SPIFFE ID, `aud`, and the attributes its entry
   * discloses. Verify it against the JWKS; the token is returned as the server signed it.
   */
  async fetchIdentityDocument(
    p: JwtSvidParams,
    o: CallOptions = {},
  ): Promise<{ spiffeId: string; document: string; expiresAt: number }> {
    const audience = typeof p.audience === 'string' ? [p.audience] : [...p.audience];
    if (audience.length === 0) throw new InvalidArgumentError('audience must be specified');
    const signal = this.#signal(o.signal);
    try {
      const r = await this.#documents.fetchIdentityDocument(
        { audience, spiffeId: p.spiffeId ?? '' },
        { signal, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) },
      );
      return { spiffeId: r.spiffeId, document: r.document, expiresAt: Number(r.expiresAt) * 1000 };
    } catch (e) {
      throw toWorkloadError(e, this.endpoint);
    }
  }

  /**
   * A credential for a server workload from the agent's credential API (docs/access.md). A
   * denial throws CredentialDenied (permission_denied) naming the reason, policy and condition.
   */
  async getCredential(p: CredentialParams, o: CallOptions = {}): Promise<WorkloadCredential> {
    const signal = this.#signal(o.signal);
    try {
      const r = await this.#credentials.getCredential(
        { serverWorkload: p.serverWorkload, spiffeId: p.spiffeId ?? '' },
        { signal, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) },
      );
      return parseCredential(r);
    } catch (e) {
      throw credentialDenied(e) ?? toWorkloadError(e, this.endpoint);
    }
  }

  /** The first X509-SVID response: SVIDs (default first) and bundles (own + federated). */
  fetchX509Context(o: CallOptions = {}): Promise<X509Context> {
    return this.#first((s) => this.watchX509Context(s), o);
  }

  /** Every X509-SVID response until `signal` aborts or the stream ends (then it just returns). */
  watchX509Context(signal?: AbortSignal): AsyncGenerator<X509Context> {
    return this.#watch((s) => this.#api.fetchX509SVID({}, { signal: s }), parseX509Context, signal);
  }

  fetchX509Bundles(o: CallOptions = {}): Promise<X509BundleSet> {
    return this.#first((s) => this.watchX509Bundles(s), o);
  }

  watchX509Bundles(signal?: AbortSignal): AsyncGenerator<X509BundleSet> {
    return this.#watch(
      (s) => this.#api.fetchX509Bundles({}, { signal: s }),
      parseX509Bundles,
      signal,
    );
  }

  fetchJWTBundles(o: CallOptions = {}): Promise<JwtBundleSet> {
    return this.#first((s) => this.watchJWTBundles(s), o);
  }

  watchJWTBundles(signal?: AbortSignal): AsyncGenerator<JwtBundleSet> {
    return this.#watch(
      (s) => this.#api.fetchJWTBundles({}, { signal: s }),
      (r) => parseJwtBundles(r.bundles),
      signal,
    );
  }

  /** The default (first) JWT-SVID for the audience, or the one for `spiffeId`. */
  async fetchJWTSVID(p: JwtSvidParams, o: CallOptions = {}): Promise<JwtSvid> {
    const all = await this.fetchJWTSVIDs(p, o);
    const first = all[0];
    if (!first) throw new UnavailableError('Workload API returned no JWT-SVID');
    return first;
  }

  async fetchJWTSVIDs(p: JwtSvidParams, o: CallOptions = {}): Promise<JwtSvid[]> {
    const audience = typeof p.audience === 'string' ? [p.audience] : [...p.audience];
    if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
      throw new InvalidArgumentError('a JWT-SVID needs at least one non-empty audience');
    }
    const r = await this.#unary(
      (s, timeoutMs) =>
        this.#api.fetchJWTSVID(
          { audience, spiffeId: p.spiffeId ?? '' },
          { signal: s, ...(timeoutMs ? { timeoutMs } : {}) },
        ),
      o,
    );
    return r.svids.map(parseJwtSvid);
  }

  /** Asks the Workload API to validate a JWT-SVID (InvalidArgument when it does not). */
  async validateJWTSVID(
    token: string,
    audience: string,
    o: CallOptions = {},
  ): Promise<ValidatedJwtSvid> {
    const r = await this.#unary(
      (s, timeoutMs) =>
        this.#api.validateJWTSVID(
          { audience, svid: token },
          { signal: s, ...(timeoutMs ? { timeoutMs } : {}) },
        ),
      o,
    );
    return { spiffeId: r.spiffeId, claims: { ...(r.claims ?? {}) } };
  }

  /** Ends every open stream and the connection. */
  close(): void {
    this.#closing.abort();
    this.#sessions.abort();
  }

  async #unary<R>(
    call: (s: AbortSignal, timeoutMs?: number) => Promise<R>,
    o: CallOptions,
  ): Promise<R> {
    const signal = this.#signal(o.signal);
    try {
      return await call(signal, o.timeoutMs);
    } catch (e) {
      throw toWorkloadError(e, this.endpoint);
    }
  }

  async #first<T>(watch: (s: AbortSignal) => AsyncGenerator<T>, o: CallOptions): Promise<T> {
    const ac = new AbortController();
    const signals = [ac.signal, ...(o.signal ? [o.signal] : [])];
    if (o.timeoutMs !== undefined) signals.push(AbortSignal.timeout(o.timeoutMs));
    const signal = AbortSignal.any(signals);
    try {
      for await (const v of watch(signal)) return v;
      if (signal.aborted) throw new UnavailableError('Workload API call aborted or timed out');
      throw new UnavailableError('Workload API stream ended without a response');
    } finally {
      ac.abort();
    }
  }

  async *#watch<R, T>(
    open: (s: AbortSignal) => AsyncIterable<R>,
    parse: (r: R) => T,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<T> {
    const ac = new AbortController();
    const s = this.#signal(signal, ac.signal);
    try {
      for await (const r of open(s)) yield parse(r);
    } catch (e) {
      if (s.aborted) return;
      throw toWorkloadError(e, this.endpoint);
    } finally {
      ac.abort();
    }
  }

  #signal(...more: Array<AbortSignal | undefined>): AbortSignal {
    const list = [this.#closing.signal, ...more.filter((s): s is AbortSignal => s !== undefined)];
    return AbortSignal.any(list);
  }
}
