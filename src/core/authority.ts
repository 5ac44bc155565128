// Signing authorities (X.509 CA keys and JWT keys) move through slots: prepared → active → old.
// The rotation rules (SPIRE's): prepare the next one when the active one has ≤ life/2 left,
// activate it at ≤ life/6; forced rotation is prepare → activate → taint → revoke.

export type AuthorityKind = 'x509' | 'jwt';
export type AuthorityStatus = 'prepared' | 'active' | 'old';
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-4096';
export const keyTypes: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'];

export interface Authority {
  /** Authority ID: the JWT kid, or the X.509 CA's subject key id (hex). */
  readonly id: string;
  /** The server instance that owns the private key. */
  readonly serverId: string;
  readonly kind: AuthorityKind;
  readonly status: AuthorityStatus;
  /** Reference to the private key in the key manager. */
  readonly keyRef: string;
  readonly keyType: KeyType;
  /** SubjectPublicKeyInfo DER. */
  readonly publicKeyDer: Uint8Array;
  /** X.509 only: the CA certificate DER, then any upstream chain certificates. */
  readonly certChainDer: readonly Uint8Array[];
  readonly notBefore: number;
  readonly notAfter: number;
  readonly tainted: boolean;
  readonly createdAt: number;
}

export interface RotationThresholds {
  prepareAt: number;
  activateAt: number;
}

const DAY = 86_400_000;

/** When (epoch ms) the next authority should be prepared and activated for the given active one. */
export function rotationThresholds(
  a: Pick<Authority, 'notBefore' | 'notAfter'>,
): RotationThresholds {
  const life = a.notAfter - a.notBefore;
  return {
    prepareAt: a.notAfter - Math.min(life / 2, 30 * DAY),
    activateAt: a.notAfter - Math.min(life / 6, 7 * DAY),
  };
}
