// WorkloadView → Workload API messages, with the encodings SPIRE emits (spiffe.md §2):
// X.509 bundles and chains are raw DER concatenated (not PEM, not PKCS#7), JWT bundles are the
// source's plain JWKS JSON as UTF-8 bytes, map keys are trust-domain IDs ("spiffe://td").
import { create } from '@bufbuild/protobuf';
import {
  JWTBundlesResponseSchema,
  X509BundlesResponseSchema,
  X509SVIDResponseSchema,
  type JWTBundlesResponse,
  type X509BundlesResponse,
  type X509SVIDResponse,
} from '../../../proto/gen/spiffe/workload_pb.js';
import type { WorkloadView } from './identity-source.ts';

/** The spec says servers SHOULD NOT support longer hints; such a hint is not sent. */
export const MAX_HINT_BYTES = 1024;

export function concatDer(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Keeps the source's order (oldest entry first: the first SVID is the default identity) and
 * makes hints unique: a later SVID whose hint was already used is dropped, as SPIRE's
 * hintsfilter keeps the oldest entry. Empty hints never collide.
 */
export function uniqueHints<T extends { readonly hint: string }>(svids: readonly T[]): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const svid of svids) {
    const hint = usableHint(svid.hint);
    if (hint !== '' && seen.has(hint)) continue;
    if (hint !== '') seen.add(hint);
    out.push(svid);
  }
  return out;
}

export function usableHint(hint: string): string {
  return Buffer.byteLength(hint, 'utf8') > MAX_HINT_BYTES ? '' : hint;
}

function derMap(bundles: ReadonlyMap<string, readonly Uint8Array[]>): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [td, certs] of bundles) if (certs.length > 0) out[td] = concatDer(certs);
  return out;
}

export function x509SvidResponse(view: WorkloadView): X509SVIDResponse {
  const bundle = concatDer(view.bundle);
  return create(X509SVIDResponseSchema, {
    svids: uniqueHints(view.svids).map((s) => ({
      spiffeId: s.spiffeId,
      x509Svid: concatDer(s.chainDer),
      x509SvidKey: s.keyPkcs8Der,
      bundle,
      hint: usableHint(s.hint),
    })),
    federatedBundles: derMap(view.federatedBundles),
  });
}

export function x509BundlesResponse(view: WorkloadView): X509BundlesResponse {
  const bundles = derMap(view.federatedBundles);
  // The own trust domain last so that a federated entry can never shadow it.
  if (view.bundle.length > 0) bundles[view.trustDomainId] = concatDer(view.bundle);
  return create(X509BundlesResponseSchema, { bundles });
}

export function jwtBundlesResponse(view: WorkloadView): JWTBundlesResponse {
  const utf8 = new TextEncoder();
  const bundles: Record<string, Uint8Array> = {};
  for (const [td, jwks] of view.jwtBundles) bundles[td] = utf8.encode(jwks);
  return create(JWTBundlesResponseSchema, { bundles });
}
