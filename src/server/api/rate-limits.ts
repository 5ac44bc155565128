// Per-address rate limits on the mTLS API, checked before authentication, as SPIRE does: node
// attestation (anonymous, costs a signature check or a join-token lookup) and SVID signing
// (counted per SVID of a batch). A flood is refused with ResourceExhausted before it costs
// signature checks, datastore work or audit records. The local admin socket is not limited.
import { ResourceExhaustedError } from '../../core/errors.ts';
import { RateLimiter } from '../http/rate-limit.ts';
import type { ServerConfigParsed } from '../compose/config/schema.ts';
import type { Peer } from './authenticate.ts';

/** The server config's `rate_limit` block. */
export type ApiRateLimitConfig = ServerConfigParsed['rate_limit'];

const items = (m: unknown) => {
  const params = (m as { params?: unknown } | undefined)?.params;
  return Array.isArray(params) ? params.length : 1;
};

export class ApiRateLimits {
  readonly #attestation: RateLimiter;
  readonly #signing: RateLimiter;
  readonly #onLimited: (kind: 'attestation' | 'signing') => void;

  constructor(c: ApiRateLimitConfig, onLimited: (kind: 'attestation' | 'signing') => void) {
    this.#attestation = new RateLimiter({
      perSecond: c.attestation_per_second,
      burst: c.attestation_burst,
    });
    this.#signing = new RateLimiter({ perSecond: c.signing_per_second, burst: c.signing_burst });
    this.#onLimited = onLimited;
  }

  /** Throws ResourceExhaustedError when `method` from this peer is over its rate. */
  check(method: string, peer: Peer, message: unknown): void {
    if (peer.kind !== 'tls') return;
    const address = peer.address ?? '';
    if (method === ATTEST) this.#take('attestation', this.#attestation, address, 1);
    else if (SIGNING.has(method)) this.#take('signing', this.#signing, address, items(message));
  }

  #take(kind: 'attestation' | 'signing', limiter: RateLimiter, address: string, cost: number) {
    if (limiter.take(address, cost)) return;
    this.#onLimited(kind);
    throw new ResourceExhaustedError(
      `${kind} rate limit exceeded for ${address || 'this address'}; retry in ${limiter.retryAfterSeconds(address)} s`,
    );
  }
}

const ATTEST = '/tessera.v1.AgentService/AttestAgent';
const SIGNING = new Set([
  '/tessera.v1.SvidService/BatchNewX509SVID',
  '/tessera.v1.SvidService/NewJWTSVID',
  '/tessera.v1.SvidService/BatchNewJWTSVID',
  '/tessera.v1.SvidService/NewIdentityDocument',
  // A release costs a decision, three audit records and often a signature or an upstream call.
  '/tessera.v1.CredentialReleaseService/ReleaseCredential',
  // A decision per server workload of the protocol.
  '/tessera.v1.CredentialReleaseService/ListGrantedServerWorkloads',
]);
