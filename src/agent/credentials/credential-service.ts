// The one service behind both workload-facing doors (gRPC on the Workload API socket, loopback
// HTTP): given an attested caller and the server workload it asks for, pick the caller's identity,
// answer from the credential cache or ask the server, and say exactly why when it is denied.
// The doors attest the caller (agent/attestation) and render the answer; nothing here knows
// about transports.
import { attributesKey } from '../../core/attributes.ts';
import { randomUUID } from 'node:crypto';
import { type AccessHttpRequest, NAME_PATTERN } from '../../core/access.ts';
import type { Entry } from '../../core/entry.ts';
import { InvalidArgumentError, PermissionDeniedError } from '../../core/errors.ts';
import { formatSelector, selectorSetKey, type Selector } from '../../core/selector.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type {
  CredentialCache,
  CredentialDenial,
  CredentialKey,
  ReleasedCredential,
} from '../cache/credential-cache.ts';
import type { GrantedLister, Releaser } from './release-client.ts';

/** What a workload asks for (untrusted, from the caller). */
export interface CredentialAsk {
  /** Server workload name. */
  readonly server: string;
  /** Which of the caller's SPIFFE IDs to ask as; "" = its first. */
  readonly spiffeId: string;
  /**
   * The HTTP request the credential is for (the proxy's HTTP handlers): conditions on `request`
   * see it, and a credential decided on it is cached for it alone.
   */
  readonly request?: AccessHttpRequest;
}

export interface ServedCredential {
  /** The same object for every answer from one release (doors may memoise their encoding). */
  readonly credential: ReleasedCredential;
  /** Answered from the agent's cache (no server round trip). */
  readonly cached: boolean;
}

/** Access was denied by the server's decision: names the reason, policy and failed condition. */
export class CredentialDeniedError extends PermissionDeniedError {
  readonly denial: CredentialDenial;
  readonly server: string;
  readonly spiffeId: string;
  constructor(server: string, spiffeId: string, denial: CredentialDenial) {
    super(deniedMessage(server, spiffeId, denial));
    this.name = 'CredentialDeniedError';
    this.denial = denial;
    this.server = server;
    this.spiffeId = spiffeId;
  }
}

/** `access to server workload "db" denied for spiffe://…: condition-false (policy …, failed condition: …)` */
export function deniedMessage(server: string, spiffeId: string, d: CredentialDenial): string {
  const parts = [
    d.policy && `policy "${d.policy}"`,
    d.failedCondition && `failed condition: ${d.failedCondition}`,
  ].filter(Boolean);
  const why = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  return `access to server workload "${server}" denied for ${spiffeId}: ${d.reason || 'denied'}${why}`;
}

export const MAX_SERVER_NAME_BYTES = 63;
/** Bounds of the HTTP request facts (release-input on the server holds the same). */
export const MAX_HTTP_METHOD_BYTES = 16;
export const MAX_HTTP_PATH_BYTES = 2048;
export const MAX_HTTP_HOST_BYTES = 255;
export const MAX_SPIFFE_ID_BYTES = 2048;

export interface CredentialServiceOptions {
  readonly cache: CredentialCache;
  readonly release: Releaser;
  /** ListGrantedServerWorkloads (the cloud endpoints' role listings); absent: none granted. */
  readonly granted?: GrantedLister;
  /** Bound on one release (the server's answer). */
  readonly releaseTimeoutMs?: number;
  readonly correlationId?: () => string;
}

export class CredentialService {
  readonly #cache: CredentialCache;
  readonly #release: Releaser;
  readonly #granted: GrantedLister;
  readonly #correlationId: () => string;
  /** Canonical client keys per attested selector set (attestations reuse their frozen arrays). */
  readonly #clientKeys = new WeakMap<readonly Selector[], string>();
  readonly #namedMemo = new WeakMap<ReleasedCredential, ReleasedCredential>();

  constructor(o: CredentialServiceOptions) {
    this.#cache = o.cache;
    this.#release = o.release;
    this.#granted = o.granted ?? (async () => []);
    this.#correlationId = o.correlationId ?? randomUUID;
  }

  /**
   * The credential for `ask` as `caller`. Throws InvalidArgumentError (bad ask),
   * PermissionDeniedError "no identity issued" (the caller has no entry, or not the one asked
   * for), CredentialDeniedError (the server denied it), UnavailableError (the server does not
   * answer and nothing usable is cached).
   */
  async get(
    caller: AttestedCaller,
    ask: CredentialAsk,
    signal?: AbortSignal,
    o: { minValidityMs?: number } = {},
  ): Promise<ServedCredential> {
    const { entry, key, hit } = this.#lookup(caller, ask, o.minValidityMs);
    if (hit) return { credential: hit, cached: true };
    const asked = this.#cache.get(
      key,
      () =>
        this.#release(
          {
            entryId: entry.id,
            selectors: caller.selectors.map(formatSelector),
            attributes: attributesOf(caller),
            server: ask.server,
            ...(ask.request ? { request: ask.request } : {}),
            correlationId: this.#correlationId(),
          },
          // Not the caller's signal: concurrent callers share this release (single flight).
          new AbortController().signal,
        ),
      o.minValidityMs,
    );
    const served = await (signal ? untilAborted(asked, signal) : asked);
    if (served.kind === 'denied') {
      throw new CredentialDeniedError(ask.server, entry.spiffeId, served.denial);
    }
    return { credential: this.#named(served.released, entry, ask.server), cached: served.cached };
  }

  /**
   * The cached credential for `ask` as `caller`, synchronously, or undefined: the common answer
   * without a promise chain (the agent's CPU per cached release is the figure
   * bench/credentials.bench.ts holds to its target). Throws what get() throws for a bad ask or a
   * caller without the identity.
   */
  cached(
    caller: AttestedCaller,
    ask: CredentialAsk,
    minValidityMs?: number,
  ): ReleasedCredential | undefined {
    return this.#lookup(caller, ask, minValidityMs).hit;
  }

  /**
   * The server workloads of `protocol` the caller (as its first identity, or `spiffeId`) is
   * granted now, as the server decides: the cloud endpoints' role listings.
   */
  granted(
    caller: AttestedCaller,
    protocol: string,
    signal: AbortSignal,
    spiffeId = '',
  ): Promise<string[]> {
    const entry = pickEntry(caller.entries, spiffeId);
    return this.#granted(
      {
        entryId: entry.id,
        selectors: caller.selectors.map(formatSelector),
        attributes: attributesOf(caller),
        protocol,
      },
      signal,
    );
  }

  #lookup(caller: AttestedCaller, ask: CredentialAsk, minValidityMs = 0) {
    checkAsk(ask);
    const entry = pickEntry(caller.entries, ask.spiffeId);
    const key: CredentialKey = {
      entryId: entry.id,
      entryRevision: entry.revision,
      clientKey: this.#clientKey(caller),
      server: ask.server,
      ...(ask.request ? { request: ask.request } : {}),
    };
    const peeked = this.#cache.peek(key, minValidityMs);
    const hit = peeked ? this.#named(peeked, entry, ask.server) : undefined;
    return { entry, key, hit };
  }

  /** The server names the client and server workload; an older one may leave them out. */
  #named(r: ReleasedCredential, entry: Entry, server: string): ReleasedCredential {
    if (r.spiffeId !== '' && r.server !== '') return r;
    let named = this.#namedMemo.get(r);
    if (!named) {
      named = Object.freeze({
        ...r,
        spiffeId: r.spiffeId || entry.spiffeId,
        server: r.server || server,
      });
      this.#namedMemo.set(r, named);
    }
    return named;
  }

  #clientKey(caller: AttestedCaller): string {
    let k = this.#clientKeys.get(caller.selectors);
    if (k === undefined) {
      k = selectorSetKey(caller.selectors);
      this.#clientKeys.set(caller.selectors, k);
    }
    // uid/gid and the workload's attributes are sent: part of who the server decided for.
    const attrs = caller.attributes ? `\n${attributesKey(caller.attributes)}` : '';
    return `${caller.process.uid}:${caller.process.gid}\n${k}${attrs}`;
  }
}

/** Settles with `p`, or rejects with the abort reason when `signal` aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Attested attributes beyond the selectors, from the kernel (untrusted input never lands here). */
function attributesOf(caller: AttestedCaller): Record<string, string> {
  return {
    ...caller.attributes,
    'unix.uid': String(caller.process.uid),
    'unix.gid': String(caller.process.gid),
  };
}

function checkAsk(ask: CredentialAsk): void {
  if (ask.server === '') throw new InvalidArgumentError('server_workload must be specified');
  if (Buffer.byteLength(ask.server) > MAX_SERVER_NAME_BYTES || !NAME_PATTERN.test(ask.server)) {
    throw new InvalidArgumentError(
      `invalid server_workload "${printable(ask.server)}": expected a name of lowercase letters, digits, ".", "_" and "-" (at most ${MAX_SERVER_NAME_BYTES})`,
    );
  }
  if (ask.request) checkRequest(ask.request);
  if (ask.spiffeId === '') return;
  if (Buffer.byteLength(ask.spiffeId) > MAX_SPIFFE_ID_BYTES) {
    throw new InvalidArgumentError(`invalid spiffe_id: longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  }
  try {
    SpiffeId.parse(ask.spiffeId);
  } catch (e) {
    throw new InvalidArgumentError(`invalid spiffe_id: ${(e as Error).message}`);
  }
}

function checkRequest(r: AccessHttpRequest): void {
  for (const [field, v, max] of [
    ['http_method', r.method, MAX_HTTP_METHOD_BYTES],
    ['http_path', r.path, MAX_HTTP_PATH_BYTES],
    ['http_host', r.host, MAX_HTTP_HOST_BYTES],
  ] as const) {
    if (Buffer.byteLength(v) > max)
      throw new InvalidArgumentError(`invalid ${field}: longer than ${max} bytes`);
  }
}

/** The entry asked for if the caller has it; its first when none was named. */
function pickEntry(entries: readonly Entry[], spiffeId: string): Entry {
  const entry = spiffeId === '' ? entries[0] : entries.find((e) => e.spiffeId === spiffeId);
  if (entry) return entry;
  if (spiffeId === '' || entries.length === 0)
    throw new PermissionDeniedError('no identity issued');
  throw new PermissionDeniedError(`no identity issued for ${spiffeId} to this caller`);
}

/** Caller text in an error: bounded, control characters replaced. */
function printable(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return cut.replace(/[\u0000-\u001f\u007f"\\]/g, '?');
}
