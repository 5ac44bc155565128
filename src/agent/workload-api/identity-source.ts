// The port the Workload API server reads from; implemented by the agent's SVID cache
// (src/agent/cache). Everything here is already decided for the caller's selectors: the server
// adds the protocol (header check, streaming, encodings, error codes) and nothing else.
import type { AttestedCaller } from '../attestation/caller.ts';

export interface X509SvidItem {
  readonly spiffeId: string;
  /** Leaf first, then intermediates (DER). */
  readonly chainDer: readonly Uint8Array[];
  /** Unencrypted PKCS#8 DER of the SVID's private key. */
  readonly keyPkcs8Der: Uint8Array;
  readonly hint: string;
  /** Entry id; also orders SVIDs (oldest entry first, as SPIRE does for hint collisions). */
  readonly entryId: string;
  readonly expiresAt: number;
}

/** Everything a workload with given selectors may see, at one moment. */
export interface WorkloadView {
  readonly svids: readonly X509SvidItem[];
  /**
   * The caller matches at least one entry, even when no X.509-SVID is cached for it (e.g. the
   * agent restarted with its persisted entries while the server is away). The bundle streams
   * serve such a caller; the X.509-SVID stream needs `svids`.
   */
  readonly identified: boolean;
  /** The agent's own trust domain ("spiffe://td" form) and its CA certificates (DER). */
  readonly trustDomainId: string;
  readonly bundle: readonly Uint8Array[];
  /** Federated trust domains the workload's entries federate with: "spiffe://td" → CA DERs. */
  readonly federatedBundles: ReadonlyMap<string, readonly Uint8Array[]>;
  /** JWKS JSON per trust domain ("spiffe://td" → {"keys":[...]} with kid), own + federated. */
  readonly jwtBundles: ReadonlyMap<string, string>;
}

export interface JwtSvidItem {
  readonly spiffeId: string;
  readonly token: string;
  readonly hint: string;
}

export interface WorkloadIdentitySource {
  /**
   * Before a stream's first message: mints what the caller's entries need and the cache lacks
   * (bounded; on failure the caller gets what there is).
   */
  prepare(caller: AttestedCaller): Promise<void>;
  /**
   * The current view for this caller. `identified` false means "no identity". Depends on nothing
   * of the caller but its selectors and the entries they match, and every change is followed by
   * an onChange notification: until then the Workload API may share one encoded answer between
   * the streams of callers with the same selectors (shared-responses.ts).
   */
  view(caller: AttestedCaller): WorkloadView;
  /** Called whenever any view may have changed (rotation, entry or bundle change). */
  onChange(listener: () => void): () => void;
  /**
   * JWT-SVIDs for the caller's entries (only `spiffeId`'s when given), minted or from the cache.
   * Throws PermissionDeniedError when the caller has no matching identity.
   */
  fetchJwtSvids(
    caller: AttestedCaller,
    audience: readonly string[],
    spiffeId: string,
  ): Promise<JwtSvidItem[]>;
  /**
   * fetchJwtSvids' answer when every JWT-SVID it needs is cached now, synchronously (the hot
   * path of a repeated FetchJWTSVID); undefined when any must be minted or none matches (then
   * fetchJwtSvids decides). Optional: a source without a cache leaves it out.
   */
  cachedJwtSvids?(
    caller: AttestedCaller,
    audience: readonly string[],
    spiffeId: string,
  ): JwtSvidItem[] | undefined;
  /**
   * Validates a JWT-SVID against the bundles the caller may see: the own trust domain's, and the
   * federated bundles of the trust domains its entries federate with (as SPIRE does).
   * Throws InvalidArgumentError with the reason when it does not validate.
   */
  validateJwtSvid(
    token: string,
    audience: string,
    caller: AttestedCaller,
  ): Promise<{ spiffeId: string; claims: Record<string, unknown> }>;
}
