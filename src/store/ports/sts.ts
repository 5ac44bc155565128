// Store port of the token exchange (docs/token-exchange.md): STS issuers and trust policies.

/** Where an STS issuer's verification keys come from. */
export type StsKeySource = 'jwks' | 'discovery';

/** An external OIDC issuer registered through the admin API (docs/token-exchange.md). */
export interface StsIssuerRecord {
  /** Compared byte for byte with the subject token's `iss`; the primary key. */
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly keySource: StsKeySource;
  /** The JWK Set document (JSON text) for `jwks`; "" for `discovery`. */
  readonly jwks: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A trust policy created through the admin API (docs/trust-policies.md); stored uncompiled. */
export interface TrustPolicyRecord {
  /** Unique; the primary key. */
  readonly name: string;
  readonly issuer: string;
  readonly condition: string;
  readonly attributeMapping: Readonly<Record<string, string>>;
  /** SPIFFE ID template, or "" for an access-token policy. */
  readonly spiffeId: string;
  /** Access-token audience, or "" for a SPIFFE ID policy. */
  readonly accessTokenAudience: string;
  readonly accessTokenScopes: readonly string[];
  /** Access-token policies: a DPoP proof is required (RFC 9449). */
  readonly accessTokenRequireDpop: boolean;
  /** Access-token policies: its tokens may call /introspect and /revoke. */
  readonly introspectionClient: boolean;
  readonly ttl: string;
  /** The template it was made from (github, gitlab, kubernetes), or "". */
  readonly template: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * STS issuers and trust policies. Every mutation bumps one revision counter in the same
 * transaction, so servers sharing the database notice a change with one cheap read.
 */
export interface StsStore {
  /** AlreadyExistsError when the issuer is registered. */
  addIssuer(r: StsIssuerRecord): Promise<StsIssuerRecord>;
  getIssuer(issuer: string): Promise<StsIssuerRecord | null>;
  /** Ordered by issuer. */
  listIssuers(): Promise<StsIssuerRecord[]>;
  /**
   * NotFoundError when missing; FailedPreconditionError, naming them, while trust policies
   * refer to it.
   */
  removeIssuer(issuer: string): Promise<StsIssuerRecord>;
  /** AlreadyExistsError when a policy with this name exists. */
  createPolicy(r: TrustPolicyRecord): Promise<TrustPolicyRecord>;
  getPolicy(name: string): Promise<TrustPolicyRecord | null>;
  /** Ordered by creation time, then name (the order the exchange tries them in). */
  listPolicies(): Promise<TrustPolicyRecord[]>;
  /** NotFoundError when missing. Returns the deleted policy. */
  deletePolicy(name: string): Promise<TrustPolicyRecord>;
  /** Increases with every mutation; 0 before the first. */
  revision(): Promise<number>;
}
