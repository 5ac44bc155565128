// Keys of an external OIDC issuer found through its discovery document: GET
// `{issuer}/.well-known/openid-configuration` (its `issuer` must equal the registered URL byte for
// byte, OpenID Connect Discovery §4.3), then GET its `jwks_uri`. Every fetch is https only, follows
// no redirects, and is bounded in time and size. Keys are cached; an unknown `kid` triggers a
// refresh, at most one per issuer per `minRefreshIntervalMs` (concurrent misses share one fetch),
// so a stream of tokens with made-up kids cannot turn the server into a request amplifier.
import type { KeyObject } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { OAuthError } from './errors.ts';
import { clip } from './form.ts';
import { parseJwks, type IssuerKeys, type TrustedIssuer } from './issuers.ts';

export const DISCOVERY_PATH = '/.well-known/openid-configuration';

export interface FetchOptions {
  /** Extra trusted CA certificates (PEM), added to Node's roots; tests use a local CA. */
  readonly ca?: readonly string[];
  /** Whole request, headers and body included. */
  readonly timeoutMs: number;
}

export interface DiscoveryOptions extends FetchOptions {
  readonly clock: Clock;
  readonly maxDocumentBytes: number;
  readonly maxJwksBytes: number;
  /** At most one refresh per issuer in this window (successful or not). */
  readonly minRefreshIntervalMs: number;
  /** Cached keys older than this are refreshed in the background when used. */
  readonly maxAgeMs: number;
}

export const DEFAULT_DISCOVERY: Omit<DiscoveryOptions, 'clock' | 'ca'> = {
  timeoutMs: 5_000,
  maxDocumentBytes: 64 * 1024,
  maxJwksBytes: 256 * 1024,
  minRefreshIntervalMs: 30_000,
  maxAgeMs: 3_600_000,
};

/** An https URL without userinfo or fragment; anything else is refused before any I/O. */
export function checkFetchUrl(raw: unknown, what: string): URL {
  if (typeof raw !== 'string' || raw === '' || raw.length > 2048)
    throw new InvalidArgumentError(`${what}: must be an https URL of at most 2048 characters`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new InvalidArgumentError(`${what}: "${clip(raw)}" is not a URL`);
  }
  if (u.protocol !== 'https:')
    throw new InvalidArgumentError(`${what}: "${clip(raw)}" is not https`);
  if (u.username || u.password || u.hash)
    throw new InvalidArgumentError(`${what}: "${clip(raw)}" must not hold userinfo or a fragment`);
  return u;
}

/** GET a JSON document over https: status 200, no redirects, at most maxBytes, within timeoutMs. */
export function fetchJson(url: URL, maxBytes: number, o: FetchOptions): Promise<unknown> {
  const where = clip(url.toString());
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (msg: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new InvalidArgumentError(`${where}: ${msg}`));
    };
    const req = https.get(
      url,
      {
        headers: { accept: 'application/json' },
        ...(o.ca && o.ca.length > 0 ? { ca: [...tls.rootCertificates, ...o.ca] } : {}),
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return fail(`redirect (${status}) refused`);
        if (status !== 200) return fail(`HTTP ${status}`);
        const declared = Number(res.headers['content-length'] ?? NaN);
        if (declared > maxBytes) return fail(`response larger than ${maxBytes} bytes`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) return fail(`response larger than ${maxBytes} bytes`);
          chunks.push(c);
        });
        res.on('error', (e) => fail(e.message));
        res.on('end', () => {
          if (settled) return;
          try {
            const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
            settled = true;
            clearTimeout(timer);
            resolve(doc);
          } catch {
            fail('response is not JSON');
          }
        });
      },
    );
    req.on('error', (e) => fail(e.message));
    const timer = setTimeout(
      () => fail(`no complete response within ${o.timeoutMs} ms`),
      o.timeoutMs,
    );
  });
}

/** Fetches the discovery document, checks its issuer, then fetches and parses the JWKS. */
export async function discoverKeys(issuer: string, o: DiscoveryOptions): Promise<IssuerKeys> {
  const base = checkFetchUrl(issuer, 'issuer');
  const docUrl = new URL(base.toString().replace(/\/$/, '') + DISCOVERY_PATH);
  const doc = await fetchJson(docUrl, o.maxDocumentBytes, o);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new InvalidArgumentError(`${clip(docUrl.toString())}: not a JSON object`);
  const d = doc as { issuer?: unknown; jwks_uri?: unknown };
  if (d.issuer !== issuer)
    throw new InvalidArgumentError(
      `${clip(docUrl.toString())}: its issuer ${JSON.stringify(clip(String(d.issuer)))} is not the registered "${clip(issuer)}"`,
    );
  const jwksUrl = checkFetchUrl(d.jwks_uri, `${clip(docUrl.toString())}: jwks_uri`);
  const jwks = await fetchJson(jwksUrl, o.maxJwksBytes, o);
  return parseJwks(jwks, clip(jwksUrl.toString()));
}

type KeyEntry = { key: KeyObject; algs: readonly string[] };

/** The cached keys of one discovery issuer. No I/O until the first use. */
export class DiscoveryKeys {
  readonly issuer: string;
  readonly #o: DiscoveryOptions;
  readonly #fetch: (issuer: string, o: DiscoveryOptions) => Promise<IssuerKeys>;
  #keys: IssuerKeys = new Map();
  #fetchedAt: number | undefined;
  #lastAttempt: number | undefined;
  #lastError = '';
  #inflight: Promise<void> | undefined;
  /** Fetches done (for tests and metrics). */
  fetches = 0;

  constructor(
    issuer: string,
    o: DiscoveryOptions,
    fetch: (issuer: string, o: DiscoveryOptions) => Promise<IssuerKeys> = discoverKeys,
  ) {
    this.issuer = issuer;
    this.#o = o;
    this.#fetch = fetch;
  }

  /** The cached keys; when they are older than maxAge a background refresh starts. */
  get keys(): IssuerKeys {
    if (this.#fetchedAt !== undefined && this.#o.clock.now() - this.#fetchedAt > this.#o.maxAgeMs)
      void this.refresh();
    return this.#keys;
  }

  /** A key not in the cache: refresh (rate-limited, shared) and look again. */
  async resolve(kid: string): Promise<KeyEntry | undefined> {
    await this.refresh();
    const entry = this.#keys.get(kid);
    if (!entry && this.#keys.size === 0 && this.#lastError)
      throw new OAuthError(
        'invalid_grant',
        'subject token key is unknown',
        `keys of "${clip(this.issuer)}" unavailable: ${this.#lastError}`,
      );
    return entry;
  }

  /** Keys fetched elsewhere just now (the admin API's check at add): counts as a refresh. */
  seed(keys: IssuerKeys): void {
    const now = this.#o.clock.now();
    this.#keys = keys;
    this.#fetchedAt = now;
    this.#lastAttempt = now;
    this.#lastError = '';
  }

  /** Starts (or joins) a refresh unless one ran within minRefreshIntervalMs. Never rejects. */
  refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    const now = this.#o.clock.now();
    if (this.#lastAttempt !== undefined && now - this.#lastAttempt < this.#o.minRefreshIntervalMs)
      return Promise.resolve();
    this.#lastAttempt = now;
    this.fetches++;
    this.#inflight = this.#fetch(this.issuer, this.#o)
      .then((keys) => {
        this.#keys = keys;
        this.#fetchedAt = this.#o.clock.now();
        this.#lastError = '';
      })
      .catch((e: unknown) => {
        // Stale keys stay usable; the error explains a miss.
        this.#lastError = e instanceof Error ? e.message : String(e);
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  get lastError(): string {
    return this.#lastError;
  }

  /** As the exchange sees it. */
  trusted(audiences: readonly string[]): TrustedIssuer {
    const keys = (): IssuerKeys => this.keys;
    return {
      issuer: this.issuer,
      audiences: [...audiences],
      get keys() {
        return keys();
      },
      resolveKey: (kid) => this.resolve(kid),
    };
  }
}
