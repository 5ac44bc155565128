// The token exchange's `sts` config, checked once when the exchange is built: each issuer is an
// OIDC issuer (its JWKS file already read by the composition root) or a federated trust domain
// (`spiffe://<td>`, keys from its trust bundle); each trust policy compiles and names a known
// issuer. A bad entry is a config error naming its key path.
import { InvalidArgumentError } from '../../core/errors.ts';
import type { TrustDomain } from '../../core/spiffe-id.ts';
import { federatedTrustDomain } from './federated.ts';
import { loadIssuer, type IssuerConfig, type JwksFiles, type TrustedIssuer } from './issuers.ts';
import { compileTrustPolicy, type CompiledTrustPolicy } from './policy/compile.ts';

export interface StsConfig {
  readonly issuers: readonly IssuerConfig[];
  readonly policies: readonly unknown[];
  readonly max_ttl: number;
  /** Bound on the age of a cached federated bundle (ms); default 30 s. */
  readonly federated_bundle_max_staleness?: number;
}

export interface ConfigIssuers {
  /** OIDC issuers by `iss`. */
  readonly oidc: ReadonlyMap<string, TrustedIssuer>;
  /** Federated trust domains and the audiences their JWT-SVIDs must carry. */
  readonly federated: ReadonlyMap<string, readonly string[]>;
}

export function loadConfigIssuers(
  config: StsConfig,
  trustDomain: TrustDomain,
  jwksFiles: JwksFiles,
): ConfigIssuers {
  const oidc = new Map<string, TrustedIssuer>();
  const federated = new Map<string, readonly string[]>();
  config.issuers.forEach((c, i) => {
    const td = federatedTrustDomain(c.issuer);
    if (oidc.has(c.issuer) || (td !== undefined && federated.has(td)))
      throw new InvalidArgumentError(`config: sts.issuers[${i}]: issuer "${c.issuer}" is repeated`);
    if (td === undefined) {
      oidc.set(c.issuer, loadIssuer(c, `sts.issuers[${i}]`, jwksFiles));
      return;
    }
    if (c.jwks_file !== undefined)
      throw new InvalidArgumentError(
        `config: sts.issuers[${i}].jwks_file: not allowed for ${c.issuer} (its keys come from the trust bundle)`,
      );
    if (td === trustDomain.name)
      throw new InvalidArgumentError(
        `config: sts.issuers[${i}].issuer: ${c.issuer} is our own trust domain, not a federated one`,
      );
    federated.set(td, [...c.audiences]);
  });
  return { oidc, federated };
}

/** The config's trust policies by issuer, in config order; `known` holds every issuer name. */
export function compileConfigPolicies(
  config: StsConfig,
  trustDomain: TrustDomain,
  known: ReadonlySet<string>,
): ReadonlyMap<string, readonly CompiledTrustPolicy[]> {
  const policies = new Map<string, CompiledTrustPolicy[]>();
  const names = new Set<string>();
  config.policies.forEach((p, i) => {
    let c: CompiledTrustPolicy;
    try {
      c = compileTrustPolicy(p, { trustDomain, maxTtlMs: config.max_ttl });
    } catch (e) {
      throw new InvalidArgumentError(`config: sts.policies[${i}]: ${(e as Error).message}`);
    }
    if (names.has(c.name))
      throw new InvalidArgumentError(`config: sts.policies[${i}]: policy "${c.name}" is repeated`);
    names.add(c.name);
    if (!known.has(c.issuer))
      throw new InvalidArgumentError(
        `config: sts.policies[${i}]: trust policy "${c.name}": issuer "${c.issuer}" is not in sts.issuers`,
      );
    policies.set(c.issuer, [...(policies.get(c.issuer) ?? []), c]);
  });
  return policies;
}
