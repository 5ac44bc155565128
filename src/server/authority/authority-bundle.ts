// What an authority's life does to the trust bundle: a prepared authority is published (before it
// signs anything), a tainted one is marked, a removed one leaves, unless another authority still
// publishes the same root (an upstream CA's). Pure: the manager applies them in its transactions.
import type { Authority } from '../../core/authority.ts';
import { type Bundle, withJwtAuthority, withX509Authority } from '../../core/bundle.ts';
import type { AuthorityFactory } from './authority-factory.ts';

type Roots = Pick<AuthorityFactory, 'bundleRoot'>;

export function publishAuthority(b: Bundle, a: Authority, f: Roots): Bundle {
  if (a.kind === 'jwt') {
    return withJwtAuthority(b, {
      kid: a.id,
      publicKeyDer: a.publicKeyDer,
      expiresAt: a.notAfter,
    });
  }
  return withX509Authority(b, f.bundleRoot(a));
}

export function taintAuthority(b: Bundle, a: Authority, f: Roots): Bundle {
  if (a.kind === 'jwt') {
    return {
      ...b,
      jwtAuthorities: b.jwtAuthorities.map((k) => (k.kid === a.id ? { ...k, tainted: true } : k)),
    };
  }
  const root = f.bundleRoot(a);
  return {
    ...b,
    x509Authorities: b.x509Authorities.map((x) =>
      sameBytes(x.der, root) ? { ...x, tainted: true } : x,
    ),
  };
}

/** `x509`: this server's X.509 authorities, `a` among them; one sharing a's root keeps it. */
export function removeAuthority(
  b: Bundle,
  a: Authority,
  x509: readonly Authority[],
  f: Roots,
): Bundle {
  if (a.kind === 'jwt')
    return { ...b, jwtAuthorities: b.jwtAuthorities.filter((k) => k.kid !== a.id) };
  const root = f.bundleRoot(a);
  const shared = x509.some((o) => o.id !== a.id && sameBytes(f.bundleRoot(o), root));
  if (shared) return b;
  return { ...b, x509Authorities: b.x509Authorities.filter((x) => !sameBytes(x.der, root)) };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}
