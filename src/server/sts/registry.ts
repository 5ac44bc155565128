// The issuers and trust policies the token exchange trusts: those of the server config
// (`sts.issuers`, `sts.policies`, fixed at start) and those registered through the admin API
// (the datastore, changed at run time).
//
// Precedence: the config comes first. Its issuers and policy names are reserved: the admin API
// refuses to register an issuer URL or a policy name the config defines, and a datastore record
// that clashes anyway (the config changed later, or another server has another config) is
// ignored. For an issuer, config policies are tried first (config order), then datastore
// policies (creation order).
//
// Propagation: a change through this server's admin API reloads at once; every server polls the
// datastore's STS revision (one single-row read) every `sts.reload_interval` and reloads when it
// moved, so a change reaches every server sharing the database within that interval.
// Discovery key caches survive reloads (keyed by issuer URL).
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import type { StsIssuerRecord, Store, TrustPolicyRecord } from '../../store/types.ts';
import { DiscoveryKeys, type DiscoveryOptions } from './discovery.ts';
import { federatedTrustDomain } from './federated.ts';
import {
  loadIssuer,
  type JwksFiles,
  parseJwks,
  type IssuerConfig,
  type IssuerKeys,
  type TrustedIssuer,
} from './issuers.ts';
import { compileTrustPolicy, type CompiledTrustPolicy } from './policy/compile.ts';
import type { TrustPolicyInput } from './policy/trust-policy.ts';

export interface RegistryConfig {
  readonly issuers: readonly IssuerConfig[];
  readonly policies: readonly unknown[];
  readonly max_ttl: number;
  readonly introspection_clients?: readonly string[];
}

export interface StsRegistryOptions {
  readonly config: RegistryConfig;
  readonly trustDomain: string;
  readonly store: Pick<Store, 'transaction' | 'sts'>;
  readonly clock: Clock;
  readonly discovery: Omit<DiscoveryOptions, 'clock'>;
  /** The contents of the config issuers' `jwks_file`s (read by the composition root). */
  readonly jwksFiles: JwksFiles;
  /** Datastore records that cannot be used (clash, orphan, no longer compiling). */
  readonly warn?: (msg: string, fields: Record<string, unknown>) => void;
}

export type Source = 'config' | 'api';

export interface RegisteredIssuer {
  readonly source: Source;
  readonly trusted: TrustedIssuer;
  readonly keySource: 'jwks_file' | 'jwks' | 'discovery';
  /** The stored record (API issuers only). */
  readonly record?: StsIssuerRecord;
}

export interface RegisteredPolicy {
  readonly source: Source;
  readonly compiled: CompiledTrustPolicy;
  readonly record?: TrustPolicyRecord;
  /** Config policies: listed in sts.introspection_clients (API ones carry it in `record`). */
  readonly introspectionClient?: boolean;
}

/** A stored record as the policy document the compiler takes. */
export function recordToPolicyInput(r: TrustPolicyRecord): TrustPolicyInput {
  return {
    name: r.name,
    issuer: r.issuer,
    condition: r.condition,
    attribute_mapping: { ...r.attributeMapping },
    ...(r.spiffeId !== '' ? { spiffe_id: r.spiffeId } : {}),
    ...(r.accessTokenAudience !== ''
      ? {
          access_token: {
            audience: r.accessTokenAudience,
            scopes: [...r.accessTokenScopes],
            require_dpop: r.accessTokenRequireDpop,
          },
        }
      : {}),
    ttl: r.ttl,
  };
}

export class StsRegistry {
  readonly #o: StsRegistryOptions;
  readonly #td: TrustDomain;
  readonly #configIssuers = new Map<string, RegisteredIssuer>();
  readonly #configPolicies: RegisteredPolicy[] = [];
  #apiIssuers: ReadonlyMap<string, RegisteredIssuer> = new Map();
  #apiPolicies: readonly RegisteredPolicy[] = [];
  #apiPoliciesByIssuer: ReadonlyMap<string, readonly CompiledTrustPolicy[]> = new Map();
  readonly #discovery = new Map<string, DiscoveryKeys>();
  #revision = -1;
  #loading: Promise<void> | undefined;

  private constructor(o: StsRegistryOptions) {
    this.#o = o;
    this.#td = TrustDomain.parse(o.trustDomain);
  }

  /** Loads the config part (JWKS files, policies) and then the datastore part. */
  static async create(o: StsRegistryOptions): Promise<StsRegistry> {
    const r = new StsRegistry(o);
    o.config.issuers.forEach((c, i) => {
      // spiffe://<td> pseudo-issuers (federated JWT-SVIDs) are the exchange's own (federated.ts).
      if (federatedTrustDomain(c.issuer) !== undefined) return;
      if (!r.#configIssuers.has(c.issuer))
        r.#configIssuers.set(c.issuer, {
          source: 'config',
          keySource: 'jwks_file',
          trusted: loadIssuer(c, `sts.issuers[${i}]`, o.jwksFiles),
        });
    });
    o.config.policies.forEach((p, i) => {
      try {
        const compiled = r.compile(p);
        r.#configPolicies.push({
          source: 'config',
          compiled,
          introspectionClient: (o.config.introspection_clients ?? []).includes(compiled.name),
        });
      } catch (e) {
        throw new InvalidArgumentError(`config: sts.policies[${i}]: ${(e as Error).message}`);
      }
    });
    await r.reload();
    return r;
  }

  /** Validates and compiles a policy document under this server's trust domain and max_ttl. */
  compile(doc: unknown): CompiledTrustPolicy {
    return compileTrustPolicy(doc, { trustDomain: this.#td, maxTtlMs: this.#o.config.max_ttl });
  }

  get maxTtlMs(): number {
    return this.#o.config.max_ttl;
  }

  isConfigIssuer(issuer: string): boolean {
    return this.#configIssuers.has(issuer);
  }

  isConfigPolicy(name: string): boolean {
    return this.#configPolicies.some((p) => p.compiled.name === name);
  }

  /** Config issuer first, then an API one. */
  issuer(issuer: string): RegisteredIssuer | undefined {
    return this.#configIssuers.get(issuer) ?? this.#apiIssuers.get(issuer);
  }

  /** What verifySubjectToken looks issuers up in: config and API issuers. */
  readonly trustedIssuers = {
    get: (issuer: string): TrustedIssuer | undefined => this.issuer(issuer)?.trusted,
  };

  /** Issuers registered through the admin API (config issuers are the exchange's own). */
  readonly apiIssuers = {
    get: (issuer: string): TrustedIssuer | undefined =>
      this.#configIssuers.has(issuer) ? undefined : this.#apiIssuers.get(issuer)?.trusted,
  };

  /** Policies created through the admin API for this issuer, in creation order. */
  /** An API policy whose access tokens may call /introspect and /revoke. */
  isIntrospectionClient(name: string): boolean {
    return this.#apiPolicies.some((p) => p.compiled.name === name && p.record?.introspectionClient);
  }

  apiPoliciesFor(issuer: string): readonly CompiledTrustPolicy[] {
    return this.#apiPoliciesByIssuer.get(issuer) ?? [];
  }

  issuers(): RegisteredIssuer[] {
    return [...this.#configIssuers.values(), ...this.#apiIssuers.values()];
  }

  policies(): RegisteredPolicy[] {
    return [...this.#configPolicies, ...this.#apiPolicies];
  }

  policy(name: string): RegisteredPolicy | undefined {
    return this.policies().find((p) => p.compiled.name === name);
  }

  /** Reloads when the datastore's STS revision moved (another server changed something). */
  async poll(): Promise<void> {
    if ((await this.#o.store.sts.revision()) !== this.#revision) await this.reload();
  }

  /** Reads every API issuer and policy again; concurrent calls share one load. */
  reload(): Promise<void> {
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    const { store } = this.#o;
    const { revision, issuers, policies } = await store.transaction(async (tx) => ({
      revision: await tx.sts.revision(),
      issuers: await tx.sts.listIssuers(),
      policies: await tx.sts.listPolicies(),
    }));
    const warn = this.#o.warn ?? (() => {});
    const apiIssuers = new Map<string, RegisteredIssuer>();
    for (const r of issuers) {
      if (this.#configIssuers.has(r.issuer)) {
        warn('STS issuer in the datastore is also in the config; the config wins', {
          issuer: r.issuer,
        });
        continue;
      }
      try {
        apiIssuers.set(r.issuer, this.#issuerOf(r));
      } catch (e) {
        warn('STS issuer in the datastore is unusable', {
          issuer: r.issuer,
          err: (e as Error).message,
        });
      }
    }
    for (const url of this.#discovery.keys())
      if (apiIssuers.get(url)?.keySource !== 'discovery') this.#discovery.delete(url);
    const apiPolicies: RegisteredPolicy[] = [];
    const byIssuer = new Map<string, CompiledTrustPolicy[]>();
    for (const r of policies) {
      if (this.isConfigPolicy(r.name)) {
        warn('trust policy in the datastore has the name of a config policy; the config wins', {
          policy: r.name,
        });
        continue;
      }
      if (!this.#configIssuers.has(r.issuer) && !apiIssuers.has(r.issuer)) {
        warn('trust policy in the datastore names an unregistered issuer; ignored', {
          policy: r.name,
          issuer: r.issuer,
        });
        continue;
      }
      let compiled: CompiledTrustPolicy;
      try {
        compiled = this.compile(recordToPolicyInput(r));
      } catch (e) {
        // E.g. max_ttl lowered since it was created.
        warn('trust policy in the datastore no longer compiles; ignored', {
          policy: r.name,
          err: (e as Error).message,
        });
        continue;
      }
      apiPolicies.push({ source: 'api', compiled, record: r });
      byIssuer.set(r.issuer, [...(byIssuer.get(r.issuer) ?? []), compiled]);
    }
    this.#apiIssuers = apiIssuers;
    this.#apiPolicies = apiPolicies;
    this.#apiPoliciesByIssuer = byIssuer;
    this.#revision = revision;
  }

  #issuerOf(r: StsIssuerRecord): RegisteredIssuer {
    if (r.keySource === 'discovery') {
      let dk = this.#discovery.get(r.issuer);
      if (!dk) {
        dk = new DiscoveryKeys(r.issuer, { ...this.#o.discovery, clock: this.#o.clock });
        this.#discovery.set(r.issuer, dk);
      }
      return { source: 'api', keySource: 'discovery', trusted: dk.trusted(r.audiences), record: r };
    }
    return {
      source: 'api',
      keySource: 'jwks',
      trusted: {
        issuer: r.issuer,
        audiences: [...r.audiences],
        keys: parseJwks(JSON.parse(r.jwks) as unknown, `issuer "${r.issuer}": jwks`),
      },
      record: r,
    };
  }

  /** Hands keys the admin API just fetched to the issuer's cache (saves a second fetch). */
  seedDiscoveryKeys(issuer: string, keys: IssuerKeys): void {
    this.#discovery.get(issuer)?.seed(keys);
  }

  /** Discovery fetch options (for the admin API's validation at add). */
  discoveryOptions(): DiscoveryOptions {
    return { ...this.#o.discovery, clock: this.#o.clock };
  }
}
