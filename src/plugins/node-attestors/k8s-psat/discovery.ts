// A cluster's issuer keys found through OIDC discovery: GET the discovery document (its `issuer`
// must be the configured issuer byte for byte), then its `jwks_uri`. Cached; an unknown kid
// refreshes at most once per `minRefreshMs` (concurrent misses share one fetch), so tokens with
// made-up kids cannot turn the server into a request amplifier. Stale keys stay usable when a
// refresh fails.
import type { KeyObject } from 'node:crypto';
import { UnavailableError } from '../../../core/errors.ts';
import { type HttpsJsonOptions, httpsJson, httpsUrl } from './https-json.ts';
import { MAX_JWKS_BYTES, type PsatKeys, psatKeysOf } from './jwks.ts';

export interface DiscoveryOptions {
  readonly issuer: string;
  /** The discovery document's URL (default `<issuer>/.well-known/openid-configuration`). */
  readonly url: URL;
  readonly ca?: string | undefined;
  readonly timeoutMs: number;
  readonly minRefreshMs: number;
  readonly now: () => number;
}

export function discoveryUrl(issuer: string, explicit: string): URL {
  return httpsUrl(
    explicit || `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
    'oidc_discovery_url',
  );
}

export async function fetchDiscoveredKeys(o: DiscoveryOptions): Promise<PsatKeys> {
  const base: HttpsJsonOptions = { ca: o.ca, timeoutMs: o.timeoutMs, maxBytes: 64 * 1024 };
  const doc = (await httpsJson(o.url, base)) as { issuer?: unknown; jwks_uri?: unknown } | null;
  if (doc?.issuer !== o.issuer)
    throw new UnavailableError(
      `k8s_psat: ${o.url}: its issuer ${JSON.stringify(String(doc?.issuer).slice(0, 100))} is not the configured "${o.issuer}"`,
    );
  if (typeof doc.jwks_uri !== 'string')
    throw new UnavailableError(`k8s_psat: ${o.url}: no jwks_uri`);
  let jwksUrl: URL;
  try {
    jwksUrl = httpsUrl(doc.jwks_uri, 'jwks_uri');
  } catch (e) {
    throw new UnavailableError(`k8s_psat: ${o.url}: ${(e as Error).message}`);
  }
  const jwks = await httpsJson(jwksUrl, { ...base, maxBytes: MAX_JWKS_BYTES });
  try {
    return psatKeysOf(jwks, `k8s_psat: ${jwksUrl}`);
  } catch (e) {
    throw new UnavailableError((e as Error).message);
  }
}

export class DiscoveredKeys {
  readonly #o: DiscoveryOptions;
  readonly #fetch: (o: DiscoveryOptions) => Promise<PsatKeys>;
  #keys: PsatKeys = new Map();
  #lastAttempt: number | undefined;
  #lastError = '';
  #inflight: Promise<void> | undefined;
  fetches = 0;

  constructor(o: DiscoveryOptions, fetch = fetchDiscoveredKeys) {
    this.#o = o;
    this.#fetch = fetch;
  }

  async resolve(kid: string): Promise<KeyObject | undefined> {
    const cached = this.#keys.get(kid);
    if (cached) return cached;
    await this.#refresh();
    const key = this.#keys.get(kid);
    if (!key && this.#keys.size === 0 && this.#lastError)
      // The keys could not be had at all: say so rather than blame the token.
      throw new UnavailableError(`k8s_psat: issuer keys unavailable: ${this.#lastError}`);
    return key;
  }

  #refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    const now = this.#o.now();
    if (this.#lastAttempt !== undefined && now - this.#lastAttempt < this.#o.minRefreshMs)
      return Promise.resolve();
    this.#lastAttempt = now;
    this.fetches++;
    this.#inflight = this.#fetch(this.#o)
      .then((keys) => {
        this.#keys = keys;
        this.#lastError = '';
      })
      .catch((e: unknown) => {
        this.#lastError = e instanceof Error ? e.message : String(e);
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }
}
