// The access model (docs/access.md): a client workload, known by its SPIFFE ID and attested
// attributes, is granted a server workload (an API, a database) by an access policy whose
// condition holds now, and receives a credential from the policy's credential provider.
//
// These are the shapes every room shares — the store keeps them, server/access decides over
// them, server/broker releases credentials for them, the agent caches and hands them over. Pure
// data; validation of names and fields lives beside each type.
import type { Selector } from './selector.ts';

/** `access policy "a"` / `access policies "a", "b", …` (at most ten named): for error messages. */
export function policiesPhrase(names: readonly string[]): string {
  const shown = names.slice(0, 10).map((n) => `"${n.slice(0, 64)}"`);
  return `access polic${names.length > 1 ? 'ies' : 'y'} ${shown.join(', ')}${names.length > 10 ? ', …' : ''}`;
}

/** Names of server workloads, credential providers, policies and secrets. */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

export type ServerProtocol =
  'http' | 'https' | 'postgres' | 'redis' | 'mysql' | 'tcp' | 'aws' | 'gcp' | 'azure';
export const SERVER_PROTOCOLS: readonly ServerProtocol[] = Object.freeze([
  'http',
  'https',
  'postgres',
  'redis',
  'mysql',
  'tcp',
  'aws',
  'gcp',
  'azure',
]);

/**
 * Cloud targets (docs/cloud-credentials.md): the workload's cloud SDK fetches the credential from
 * the agent's cloud endpoints, so nothing is injected (`present` ""), host and port are optional
 * (0 = none) and there is no path prefix. The role, pool or app is the credential provider's.
 */
export const CLOUD_PROTOCOLS: readonly ServerProtocol[] = Object.freeze(['aws', 'gcp', 'azure']);
export const isCloudProtocol = (p: string): boolean =>
  (CLOUD_PROTOCOLS as readonly string[]).includes(p);

/**
 * How a credential is presented to the server workload, as the CLI spells it:
 * `authorization-bearer`, `header:NAME`, `basic`, `query:NAME`, `postgres-password`,
 * `redis-auth`, `mysql-password`, `aws-sigv4`; "" when the application fetches the credential
 * itself and nothing is injected.
 */
export type Presentation = string;

/** A server workload: the thing a client reaches. */
export interface ServerWorkload {
  /** Unique; NAME_PATTERN. */
  readonly name: string;
  /** "" only for a cloud protocol. */
  readonly host: string;
  /** 0 only for a cloud protocol. */
  readonly port: number;
  readonly protocol: ServerProtocol;
  /** HTTP(S) only: requests under this path ("" = any). */
  readonly pathPrefix: string;
  readonly present: Presentation;
  /**
   * The server workload speaks TLS: the proxy connects with TLS (in-band for PostgreSQL and
   * MySQL) and verifies its certificate for `host` against `tlsCa` (PEM; "" = system roots).
   * Always true for `https`.
   */
  readonly tls: boolean;
  /** PEM CA certificates the server workload's certificate chains to; "" = system roots. */
  readonly tlsCa: string;
  /** http/https only: the explicit proxy terminates `CONNECT host:port` with a proxy-CA certificate. */
  readonly tlsDecrypt: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * A configured credential provider. `config` holds only non-secret settings; secrets are named
 * (`secret: NAME`) and read from the secret store when a credential is released.
 */
export interface CredentialProviderRecord {
  /** Unique; NAME_PATTERN. */
  readonly name: string;
  /** A type from the credential-provider catalog (src/plugins/credential-providers/catalog.ts). */
  readonly type: string;
  /** Validated by the type's schema; JSON-serialisable. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type AccessEffect = 'allow' | 'deny';

/** An access policy: client pattern → server workload, with a condition. */
export interface AccessPolicy {
  /** Unique; NAME_PATTERN. */
  readonly name: string;
  /**
   * SPIFFE ID pattern: an exact ID (`spiffe://td/ns/prod/sa/web`), a whole trust domain
   * (`spiffe://td`), or a path glob (`*` one segment, `**` one or more trailing segments).
   */
  readonly client: string;
  /** Server workload name. */
  readonly server: string;
  /** Credential provider name; "" for a deny policy. */
  readonly credentialProvider: string;
  /** CEL over `client`, `request`, `now`; "" = always. */
  readonly condition: string;
  readonly effect: AccessEffect;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** The attested client, as the agent saw it and the server re-checks it. */
export interface AccessClient {
  readonly spiffeId: string;
  readonly selectors: readonly Selector[];
  /** Attested attributes beyond selectors (e.g. `unix.uid`), flat strings. */
  readonly attributes: Readonly<Record<string, string>>;
  /**
   * The workload's typed facts (docs/posture.md: binary, libraries, kernel, image, node,
   * posture), built by the server from `attributes`, its node record and posture reports;
   * conditions read them as `client.posture.critical`, `client.image.digest`, ...
   */
  readonly facts?: Readonly<Record<string, unknown>>;
}

/** HTTP facts of the request a credential is for (proxy, credential API); absent otherwise. */
export interface AccessHttpRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string;
}

/** One question to the decision: may this client reach this server workload now? */
export interface AccessRequest {
  readonly client: AccessClient;
  /** Server workload name. */
  readonly server: string;
  readonly request?: AccessHttpRequest;
  /** Epoch ms; the `now` the conditions see. */
  readonly at: number;
}

export type AccessDecisionReason =
  | 'allowed'
  | 'denied-by-policy'
  | 'condition-false'
  | 'no-matching-policy'
  | 'unknown-server-workload';

export interface AccessDecision {
  readonly allowed: boolean;
  readonly reason: AccessDecisionReason;
  /** The deciding policy ("" when none matched). */
  readonly policy: string;
  /** Allowed: the provider to release from; "" otherwise. */
  readonly credentialProvider: string;
  /**
   * Denied because a condition was false: the failing sub-expression of the most specific
   * matching allow policy (never a value); "" otherwise.
   */
  readonly failedCondition: string;
  /**
   * Allowed, and a condition of a policy matching this client reads `request`: the decision
   * may differ for another HTTP request, so a credential released under it is cached for this
   * request only (docs/injection.md). Absent otherwise.
   */
  readonly requestDependent?: true;
}

/** What decides (server/access): synchronous over an index kept fresh from the store. */
export interface AccessDecider {
  decide(req: AccessRequest): AccessDecision;
  /**
   * Resolves once every access change announced before the call (this server's at once, other
   * servers' as their notifications arrive) is in what decide() sees; at once when none is
   * pending. Rejects with UnavailableError when that reload failed. A caller that must not
   * decide on a stale set (the broker, before each release) awaits it first. Optional so that
   * stand-ins need not implement it.
   */
  sync?(): Promise<void>;
}

/** Which leases to end: every lease matching all the given fields. */
export interface LeaseScope {
  readonly policy?: string;
  readonly provider?: string;
  readonly server?: string;
  readonly client?: string;
  readonly agent?: string;
}

/**
 * What ends access (server/broker): ends matching leases (dynamic roles dropped) and tells agents
 * to drop cached credentials. Called by the admin services when a policy or provider is deleted
 * or changed, when an agent is banned or evicted and when an entry is deleted.
 */
export interface AccessRevocation {
  /** Returns how many leases were ended. */
  revoke(scope: LeaseScope, reason: string): Promise<number>;
}

/** A released credential's value. Never logged, never audited, never stored in plaintext. */
export type CredentialValue =
  /** A bearer token, API key or signed JWT. */
  | { readonly kind: 'token'; readonly token: string }
  /** A password, with its username ("" when the server workload takes a password alone). */
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  /** AWS credentials (cloud providers). */
  | {
      readonly kind: 'aws';
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken: string;
    };

export interface Credential {
  readonly value: CredentialValue;
  /** Epoch ms; null when the value does not expire (a static secret). */
  readonly expiresAt: number | null;
  /** The lease that ends it early (dynamic credentials); "" when none. */
  readonly leaseId: string;
}

/**
 * A lease: a released credential that exists somewhere until it is ended (a PostgreSQL role).
 * Kept in the datastore so a restarted or another server ends it.
 */
export interface Lease {
  readonly id: string;
  readonly provider: string;
  readonly server: string;
  readonly client: string;
  readonly policy: string;
  /** The agent the credential was released through ("" for admin/test releases). */
  readonly agent: string;
  /** Provider-private facts needed to end it (e.g. the role name); never a secret value. */
  readonly data: Readonly<Record<string, string>>;
  readonly expiresAt: number;
  readonly createdAt: number;
}

/**
 * Audit details of `access.request` — the inputs of a decision, enough to replay it (what-if).
 * `access.authorization` carries { decision, reason, policy, failed_condition }; `access.credential`
 * carries { provider, lease_id, expires_at }. All three share one correlation id; the actor is the
 * client SPIFFE ID and the target the server workload name.
 */
export interface AccessRequestAuditDetails {
  readonly client: string;
  /** `type:value` strings. */
  readonly selectors: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
  readonly server: string;
  readonly request?: AccessHttpRequest;
  readonly agent: string;
}

/**
 * One use of a credential the agent served from its cache, reported to the server, which audits
 * it as a release's three records marked `cached: true` (docs/injection.md, Audit).
 */
export interface CachedCredentialUse {
  /** The entry the workload was attested as. */
  readonly entryId: string;
  /** `type:value`. */
  readonly selectors: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
  readonly server: string;
  readonly request?: AccessHttpRequest;
  /** This use's own correlation id. */
  readonly correlationId: string;
  /** The release the cached credential came from. */
  readonly releasedCorrelationId: string;
  readonly policy: string;
  readonly credentialProvider: string;
  readonly leaseId: string;
  /** Epoch ms; null when it does not expire. */
  readonly expiresAt: number | null;
  /** Epoch ms: when the agent served it. */
  readonly at: number;
  /** listener | explicit | transparent | credential-api; "" when not said. */
  readonly wayIn: string;
}
