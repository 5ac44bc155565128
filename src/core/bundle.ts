// A trust bundle: the public keys that verify SVIDs of one trust domain. Encoded to the SPIFFE
// bundle format (a JWK Set with spiffe_sequence / spiffe_refresh_hint) by src/crypto/bundle-format.ts.

export interface JwtAuthorityKey {
  /** Key ID as it appears in JWT-SVID headers. */
  readonly kid: string;
  /** SubjectPublicKeyInfo DER. */
  readonly publicKeyDer: Uint8Array;
  /** Epoch ms; 0 when unknown. */
  readonly expiresAt: number;
  readonly tainted: boolean;
}

export interface X509AuthorityCert {
  /** The CA certificate DER. */
  readonly der: Uint8Array;
  readonly tainted: boolean;
}

export interface Bundle {
  readonly trustDomain: string;
  readonly x509Authorities: readonly X509AuthorityCert[];
  readonly jwtAuthorities: readonly JwtAuthorityKey[];
  /** Bumped on every change. */
  readonly sequence: number;
  /** Seconds; how often consumers should poll. */
  readonly refreshHint: number;
}

export function emptyBundle(trustDomain: string, refreshHint = 300): Bundle {
  return { trustDomain, x509Authorities: [], jwtAuthorities: [], sequence: 0, refreshHint };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Adds an X.509 authority unless already present. */
export function withX509Authority(b: Bundle, der: Uint8Array): Bundle {
  if (b.x509Authorities.some((a) => sameBytes(a.der, der))) return b;
  return { ...b, x509Authorities: [...b.x509Authorities, { der, tainted: false }] };
}

export function withJwtAuthority(b: Bundle, key: Omit<JwtAuthorityKey, 'tainted'>): Bundle {
  if (b.jwtAuthorities.some((k) => k.kid === key.kid)) return b;
  return { ...b, jwtAuthorities: [...b.jwtAuthorities, { ...key, tainted: false }] };
}

export function bundleEquals(a: Bundle, b: Bundle): boolean {
  return (
    a.trustDomain === b.trustDomain &&
    a.refreshHint === b.refreshHint &&
    a.x509Authorities.length === b.x509Authorities.length &&
    a.jwtAuthorities.length === b.jwtAuthorities.length &&
    a.x509Authorities.every((x, i) => {
      const y = b.x509Authorities[i];
      return y !== undefined && x.tainted === y.tainted && sameBytes(x.der, y.der);
    }) &&
    a.jwtAuthorities.every((x, i) => {
      const y = b.jwtAuthorities[i];
      return (
        y !== undefined &&
        x.kid === y.kid &&
        x.tainted === y.tainted &&
        x.expiresAt === y.expiresAt &&
        sameBytes(x.publicKeyDer, y.publicKeyDer)
      );
    })
  );
}
