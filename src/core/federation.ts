// SPIFFE federation relationships (spec SPIFFE_Federation.md): which foreign trust domain's
// bundle is fetched from which endpoint, with which profile, plus the fetch status. Validation
// and the polling/backoff arithmetic live here, pure; the fetching itself is in server/federation.
import { InvalidArgumentError } from './errors.ts';
import { SpiffeId, TrustDomain } from './spiffe-id.ts';

export const federationProfiles = ['https_web', 'https_spiffe'] as const;
export type FederationProfile = (typeof federationProfiles)[number];

/** Where a relationship came from: the admin API, or the server config (re-applied at start). */
export type FederationSource = 'api' | 'config';

export interface FederationStatus {
  /** Epoch ms of the last fetch attempt; 0 = never. */
  readonly lastFetchAt: number;
  /** Epoch ms of the last successful fetch; 0 = never. */
  readonly lastSuccessAt: number;
  /** "" when the last attempt succeeded (or there was none). */
  readonly lastError: string;
  /** Epoch ms of the next scheduled attempt; 0 = as soon as possible. */
  readonly nextAttemptAt: number;
  /** Failed attempts since the last success (drives the backoff). */
  readonly failures: number;
}

export interface FederationRelationship {
  /** The foreign trust domain (never this server's own). */
  readonly trustDomain: string;
  readonly bundleEndpointUrl: string;
  readonly profile: FederationProfile;
  /** https_spiffe only: the SPIFFE ID the endpoint's X509-SVID must carry; "" for https_web. */
  readonly endpointSpiffeId: string;
  readonly source: FederationSource;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly status: FederationStatus;
}

export type FederationInput = Pick<
  FederationRelationship,
  'trustDomain' | 'bundleEndpointUrl' | 'profile' | 'endpointSpiffeId'
>;

export const initialFederationStatus: FederationStatus = Object.freeze({
  lastFetchAt: 0,
  lastSuccessAt: 0,
  lastError: '',
  nextAttemptAt: 0,
  failures: 0,
});

export const MAX_ENDPOINT_URL_BYTES = 2048;
/** Stored error texts are clipped to this many characters. */
export const MAX_STATUS_ERROR_CHARS = 512;

/** Checks and canonicalizes a relationship's parameters; every rejection names the field. */
export function validateFederationInput(
  input: {
    trustDomain: string;
    bundleEndpointUrl: string;
    profile: string;
    endpointSpiffeId: string;
  },
  ownTrustDomain: string,
): FederationInput {
  let td: string;
  try {
    td = TrustDomain.parse(input.trustDomain).name;
  } catch (e) {
    throw new InvalidArgumentError(`trust_domain: ${(e as Error).message}`);
  }
  if (td === ownTrustDomain) {
    throw new InvalidArgumentError(
      `trust_domain: "${td}" is this server's own trust domain; federation is with other trust domains`,
    );
  }
  const url = checkEndpointUrl(input.bundleEndpointUrl, 'bundle_endpoint_url');
  if (!(federationProfiles as readonly string[]).includes(input.profile)) {
    throw new InvalidArgumentError(
      `profile: must be "https_web" or "https_spiffe", got "${clip(input.profile)}"`,
    );
  }
  const profile = input.profile as FederationProfile;
  let endpointSpiffeId = '';
  if (profile === 'https_spiffe') {
    if (input.endpointSpiffeId === '') {
      throw new InvalidArgumentError('endpoint_spiffe_id: required for the https_spiffe profile');
    }
    let id: SpiffeId;
    try {
      id = SpiffeId.parse(input.endpointSpiffeId);
    } catch (e) {
      throw new InvalidArgumentError(`endpoint_spiffe_id: ${(e as Error).message}`);
    }
    if (id.trustDomain.name !== td) {
      throw new InvalidArgumentError(
        `endpoint_spiffe_id: "${clip(input.endpointSpiffeId)}" is not in trust domain "${td}"`,
      );
    }
    endpointSpiffeId = id.toString();
  } else if (input.endpointSpiffeId !== '') {
    throw new InvalidArgumentError(
      'endpoint_spiffe_id: only for the https_spiffe profile (https_web authenticates the endpoint with WebPKI)',
    );
  }
  return { trustDomain: td, bundleEndpointUrl: url, profile, endpointSpiffeId };
}

/** An https URL without user info or fragment (spec §5: "https://", no userinfo, any path). */
export function checkEndpointUrl(text: string, field: string): string {
  if (typeof text !== 'string' || text === '') throw new InvalidArgumentError(`${field}: required`);
  if (text.length > MAX_ENDPOINT_URL_BYTES) {
    throw new InvalidArgumentError(`${field}: longer than ${MAX_ENDPOINT_URL_BYTES} characters`);
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new InvalidArgumentError(`${field}: "${clip(text)}" is not a URL`);
  }
  if (u.protocol !== 'https:') {
    throw new InvalidArgumentError(`${field}: must be an https:// URL, got "${clip(text)}"`);
  }
  if (u.username !== '' || u.password !== '') {
    throw new InvalidArgumentError(`${field}: must not contain user info`);
  }
  if (u.hash !== '') throw new InvalidArgumentError(`${field}: must not contain a fragment`);
  return u.toString();
}

/** Polling bounds: the refresh hint is honoured within [min, max]; absent hints use the default. */
export interface PollPolicy {
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly defaultIntervalMs: number;
  /** First retry delay after a failure; doubled per further failure. */
  readonly backoffBaseMs: number;
}

export const defaultPollPolicy: PollPolicy = Object.freeze({
  minIntervalMs: 10_000,
  maxIntervalMs: 86_400_000,
  defaultIntervalMs: 300_000,
  backoffBaseMs: 5_000,
});

/** The poll interval for a bundle's spiffe_refresh_hint (seconds; 0 or absent = the default). */
export function refreshIntervalMs(hintSeconds: number | undefined, p = defaultPollPolicy): number {
  if (hintSeconds === undefined || !Number.isFinite(hintSeconds) || hintSeconds <= 0) {
    return p.defaultIntervalMs;
  }
  return Math.min(p.maxIntervalMs, Math.max(p.minIntervalMs, hintSeconds * 1000));
}

/**
 * The delay before retrying after `failures` consecutive failures (≥ 1): exponential from the
 * base and capped at the regular poll interval (the spec: on failure retry at the next interval
 * at the latest, never aggressively), with jitter: a uniform pick in [50 %, 100 %] of it.
 * `random` returns [0, 1).
 */
export function backoffDelayMs(
  failures: number,
  intervalMs: number,
  random: () => number,
  p = defaultPollPolicy,
): number {
  const n = Math.max(1, Math.min(failures, 40));
  const base = Math.min(intervalMs, p.backoffBaseMs * 2 ** (n - 1));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.max(1, Math.round(base * (0.5 + 0.5 * r)));
}

function clip(s: string): string {
  return typeof s === 'string' && s.length > 80 ? `${s.slice(0, 80)}…` : String(s);
}
