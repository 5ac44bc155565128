// The agent's call to the server's CredentialReleaseService (proto/tessera/v1/release.proto), over
// the agent's mTLS link (identity/server-link.ts): the server re-checks that the entry is one this
// agent serves and that the selectors match it, decides, and releases. A denial is an answer; a
// server that does not answer is `unavailable` naming the address, after one more try on the next
// server address when the link moved to one (failover, as the sync stream does).
import { Code, ConnectError } from '@connectrpc/connect';
import type { AccessHttpRequest } from '../../core/access.ts';
import { TesseraError, UnavailableError } from '../../core/errors.ts';
import { SERVER_ANSWERED_KEY } from '../../core/refusal.ts';
import { errorCodeFromTransport } from '../../wire/connect-codes.ts';
import { deniedFromWire, releasedFromWire } from '../../wire/release.ts';
import type {
  ReleaseCredentialRequest,
  ReleaseCredentialResponse,
} from '../../../proto/gen/tessera/v1/release_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ReleaseCredentialRequestSchema } from '../../../proto/gen/tessera/v1/release_pb.js';
import type { ServerClients } from '../identity/server-link.ts';
import type { ReleaseOutcome } from '../cache/credential-cache.ts';

/** What the agent asks on a workload's behalf. */
export interface ReleaseParams {
  readonly entryId: string;
  /** `type:value`. */
  readonly selectors: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
  readonly server: string;
  /** The HTTP request the credential is for, when there is one. */
  readonly request?: AccessHttpRequest;
  readonly correlationId: string;
}

export type Releaser = (p: ReleaseParams, signal: AbortSignal) => Promise<ReleaseOutcome>;

/** The parts of the server link the releaser uses. */
export interface ReleaseLink {
  clients(): Pick<ServerClients, 'release' | 'address'>;
  readonly address: string;
}

/** A Releaser over the agent's server link, each call bounded by `timeoutMs`. */
export function linkReleaser(link: ReleaseLink, timeoutMs: number): Releaser {
  return async (p, signal) => {
    const req: MessageInitShape<typeof ReleaseCredentialRequestSchema> = {
      entryId: p.entryId,
      selectors: [...p.selectors],
      attributes: { ...p.attributes },
      server: p.server,
      httpMethod: p.request?.method ?? '',
      httpPath: p.request?.path ?? '',
      httpHost: p.request?.host ?? '',
      correlationId: p.correlationId,
    };
    const first = link.address;
    try {
      return fromWire(await call(link, req, signal, timeoutMs));
    } catch (e) {
      // The link marks the server down and moves to the next address on Unavailable.
      if (!isUnavailable(e) || signal.aborted || link.address === first) throw toError(e, first);
    }
    const second = link.address;
    try {
      return fromWire(await call(link, req, signal, timeoutMs));
    } catch (e) {
      throw toError(e, second);
    }
  };
}

function call(
  link: ReleaseLink,
  req: MessageInitShape<typeof ReleaseCredentialRequestSchema>,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<ReleaseCredentialResponse> {
  return link.clients().release.releaseCredential(req as ReleaseCredentialRequest, {
    signal,
    timeoutMs,
  });
}

function isUnavailable(e: unknown): boolean {
  const code = ConnectError.from(e).code;
  return code === Code.Unavailable || code === Code.DeadlineExceeded;
}

/** The server's refusal keeps its code; a server that does not answer is `unavailable`. */
function toError(e: unknown, address: string): Error {
  if (e instanceof TesseraError) return e;
  const ce = ConnectError.from(e);
  if (isUnavailable(e)) {
    // The server answered, but what it needs is unavailable (a provider's upstream, its datastore).
    const answered = ce.metadata.get(SERVER_ANSWERED_KEY) === 'true';
    return new UnavailableError(
      answered
        ? `the Tessera server (${address}) could not release: ${ce.rawMessage}`
        : `the Tessera server (${address}) does not answer: ${ce.rawMessage}`,
      { cause: e },
    );
  }
  if (ce.code === Code.Unimplemented) {
    return new TesseraError(
      'unimplemented',
      `the Tessera server (${address}) does not offer credential release (a server older than this agent?)`,
      { cause: e },
    );
  }
  const code = errorCodeFromTransport(ce.code) ?? 'internal';
  return new TesseraError(code, `the Tessera server refused the release: ${ce.rawMessage}`, {
    cause: e,
  });
}

/** The server's answer as the cache keeps it (the conversion itself is wire/release.ts). */
export function fromWire(res: ReleaseCredentialResponse): ReleaseOutcome {
  const r = res.result;
  if (r.case === 'denial') return { kind: 'denied', denial: deniedFromWire(r.value) };
  if (r.case !== 'credential') {
    throw new TesseraError(
      'internal',
      'the server answered the release with neither a credential nor a denial',
    );
  }
  const { client, ...rest } = releasedFromWire(r.value);
  return { kind: 'released', released: { ...rest, spiffeId: client } };
}

/** Who asks for the list of granted server workloads (as a release names the client). */
export interface GrantedParams {
  readonly entryId: string;
  readonly selectors: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
  readonly protocol: string;
}

export type GrantedLister = (p: GrantedParams, signal: AbortSignal) => Promise<string[]>;

/** ListGrantedServerWorkloads over the agent's server link, each call bounded by `timeoutMs`. */
export function linkGrantedLister(link: ReleaseLink, timeoutMs: number): GrantedLister {
  return async (p, signal) => {
    const address = link.address;
    try {
      const r = await link.clients().release.listGrantedServerWorkloads(
        {
          entryId: p.entryId,
          selectors: [...p.selectors],
          attributes: { ...p.attributes },
          protocol: p.protocol,
        },
        { signal, timeoutMs },
      );
      return r.names;
    } catch (e) {
      throw toError(e, address);
    }
  };
}
