// Trust bundles ↔ the wire Bundle message: X.509 authorities as DER with a parallel tainted
// list, JWT authorities with their key expiry.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Bundle } from '../core/bundle.ts';
import type { Bundle as WireBundle, BundleSchema } from '../../proto/gen/tessera/v1/types_pb.js';
import { msFromSeconds, secondsFromMs } from './time.ts';

export function bundleToWire(b: Bundle): MessageInitShape<typeof BundleSchema> {
  return {
    trustDomain: b.trustDomain,
    x509Authorities: b.x509Authorities.map((a) => a.der),
    x509Tainted: b.x509Authorities.map((a) => a.tainted),
    jwtAuthorities: b.jwtAuthorities.map((k) => ({
      kid: k.kid,
      publicKey: k.publicKeyDer,
      expiresAt: secondsFromMs(k.expiresAt),
      tainted: k.tainted,
    })),
    sequence: BigInt(b.sequence),
    refreshHint: BigInt(b.refreshHint),
  };
}

/** Inverse of bundleToWire (tainted flags and key expiry kept). Key material is not parsed here. */
export function bundleFromWire(w: WireBundle): Bundle {
  return {
    trustDomain: w.trustDomain,
    x509Authorities: w.x509Authorities.map((der, i) => ({
      der,
      tainted: w.x509Tainted[i] === true,
    })),
    jwtAuthorities: w.jwtAuthorities.map((k) => ({
      kid: k.kid,
      publicKeyDer: k.publicKey,
      expiresAt: msFromSeconds(k.expiresAt),
      tainted: k.tainted,
    })),
    sequence: Number(w.sequence),
    refreshHint: Number(w.refreshHint),
  };
}
