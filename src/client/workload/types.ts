// Typed views of Workload API responses. Trust-domain maps are keyed by the bare trust-domain
// name ("example.org"); the wire keys ("spiffe://example.org") are normalized when parsed.
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { SpiffeId } from '../../core/spiffe-id.ts';

export interface X509Svid {
  readonly spiffeId: string;
  readonly id: SpiffeId;
  /** Leaf first, then intermediates (DER). */
  readonly chainDer: readonly Uint8Array[];
  readonly certificates: readonly X509Certificate[];
  readonly privateKey: KeyObject;
  /** "" when the server set none. */
  readonly hint: string;
  /** The leaf's notAfter, epoch ms. */
  readonly expiresAt: number;
}

/** CA certificates (DER) per trust-domain name. */
export type X509BundleSet = ReadonlyMap<string, readonly Uint8Array[]>;

/** JWT authority keys by kid, per trust-domain name. */
export type JwtBundle = ReadonlyMap<string, KeyObject>;
export type JwtBundleSet = ReadonlyMap<string, JwtBundle>;

export interface X509Context {
  /** Never empty; the first is the default identity. */
  readonly svids: readonly X509Svid[];
  /** The SVIDs' own trust-domain bundles plus the federated ones. */
  readonly bundles: X509BundleSet;
}

export interface JwtSvid {
  readonly spiffeId: string;
  readonly id: SpiffeId;
  readonly token: string;
  readonly hint: string;
  readonly audience: readonly string[];
  /** Epoch ms from exp. */
  readonly expiresAt: number;
  /** Epoch ms from iat, when present. */
  readonly issuedAt: number | undefined;
  /** The payload as sent (not verified: it came from the local Workload API). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface ValidatedJwtSvid {
  readonly spiffeId: string;
  readonly claims: Record<string, unknown>;
}

/** Anything that yields the current X509-SVID (an X509Source, or a static one in tests). */
export interface X509SvidSource {
  getX509Svid(): X509Svid;
}

/** Anything that yields the CA certificates of a trust domain (name or "spiffe://" ID). */
export interface X509BundleSource {
  getX509BundleForTrustDomain(trustDomain: string): readonly Uint8Array[] | undefined;
}

export interface JwtBundleSource {
  getJwtBundleForTrustDomain(trustDomain: string): JwtBundle | undefined;
}

/** Sources that push rotations; TLS servers subscribe to swap their certificate. */
export interface Updatable {
  onUpdate(listener: () => void): () => void;
}
