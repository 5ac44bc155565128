// The admin side of the token exchange: register and remove issuers, create and delete trust
// policies, and dry-run a policy against a token or raw claims. Every change is validated first
// (a bad JWKS, an unreachable or inconsistent discovery issuer, a policy that does not compile:
// refused with the reason, nothing stored), then stored and audited in one transaction, then
// this server's registry reloads; other servers follow within `sts.reload_interval`. What a
// request's fields must be lives beside it: issuer-input.ts, policy-document.ts (templates).
import type { Clock } from '../../core/clock.ts';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  isTesseraError,
  NotFoundError,
} from '../../core/errors.ts';
import type { StsIssuerRecord, Store, TrustPolicyRecord } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { discoverKeys } from './discovery.ts';
import { dryRun, type TestInput, type TestResult } from './dry-run.ts';
import { verifySubjectToken, type VerifiedSubjectToken } from './issuers.ts';
import type { CompiledTrustPolicy } from './policy/compile.ts';
import { type AddIssuerInput, checkIssuerFields, issuerKeys } from './issuer-input.ts';
import { policyDocument, type PolicyInput } from './policy-document.ts';
import type { RegisteredIssuer, RegisteredPolicy, StsRegistry } from './registry.ts';

export const MAX_API_ISSUERS = 100;
export const MAX_API_POLICIES = 500;

export class StsAdmin {
  readonly #store: Pick<Store, 'transaction' | 'sts'>;
  readonly #auditor: Auditor;
  readonly #clock: Clock;
  readonly #registry: StsRegistry;
  readonly #verifySubject: ((token: string) => Promise<VerifiedSubjectToken>) | undefined;
  readonly #trustDomain: string;
  readonly #exchangeServed: boolean;

  constructor(o: {
    store: Pick<Store, 'transaction' | 'sts'>;
    auditor: Auditor;
    clock: Clock;
    registry: StsRegistry;
    trustDomain: string;
    /** The token exchange's own subject-token check, when it runs (federated JWT-SVIDs too). */
    verifySubject?: ((token: string) => Promise<VerifiedSubjectToken>) | undefined;
    /**
     * Whether this server serves the token exchange (its public listener is on). When it does
     * not, adding an issuer or a policy here is refused: it would succeed into a setup that
     * cannot exchange anything.
     */
    exchangeServed: boolean;
  }) {
    this.#store = o.store;
    this.#auditor = o.auditor;
    this.#clock = o.clock;
    this.#registry = o.registry;
    this.#verifySubject = o.verifySubject;
    this.#trustDomain = o.trustDomain;
    this.#exchangeServed = o.exchangeServed;
  }

  #mustServeExchange(what: string): void {
    if (this.#exchangeServed) return;
    throw new FailedPreconditionError(
      `this server does not serve the token exchange, so ${what} could not be used here: start ` +
        'it with --public-listen (config public_listen), which serves /token, /introspect and ' +
        '/revoke; nothing was stored',
    );
  }

  /** Refused changes are audited too (outcome `error`, with the code and reason), then rethrown. */
  async #refusable<T>(
    ctx: RequestContext,
    action: string,
    target: string,
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!isTesseraError(e) || e.code === 'unavailable' || e.code === 'internal') throw e;
      await this.#auditor.log(ctx, {
        action,
        target: target.slice(0, 2048),
        outcome: 'error',
        details: { code: e.code, reason: e.message },
      });
      throw e;
    }
  }

  addIssuer(ctx: RequestContext, input: AddIssuerInput): Promise<RegisteredIssuer> {
    return this.#refusable(ctx, 'sts.issuer.add', input.issuer, () => this.#addIssuer(ctx, input));
  }

  removeIssuer(ctx: RequestContext, issuer: string): Promise<void> {
    return this.#refusable(ctx, 'sts.issuer.remove', issuer, () => this.#removeIssuer(ctx, issuer));
  }

  createPolicy(ctx: RequestContext, input: PolicyInput): Promise<RegisteredPolicy> {
    const name = input.document?.name;
    return this.#refusable(ctx, 'sts.policy.create', typeof name === 'string' ? name : '', () =>
      this.#createPolicy(ctx, input),
    );
  }

  deletePolicy(ctx: RequestContext, name: string): Promise<void> {
    return this.#refusable(ctx, 'sts.policy.delete', name, () => this.#deletePolicy(ctx, name));
  }

  async #addIssuer(ctx: RequestContext, input: AddIssuerInput): Promise<RegisteredIssuer> {
    this.#mustServeExchange('an issuer');
    const fields = checkIssuerFields(input);
    const { issuer, audiences } = fields;
    if (this.#registry.isConfigIssuer(issuer))
      throw new AlreadyExistsError(`issuer "${issuer}" is defined in the server config`);
    if (await this.#store.sts.getIssuer(issuer))
      throw new AlreadyExistsError(`issuer "${issuer}" is already registered`);
    if ((await this.#store.sts.listIssuers()).length >= MAX_API_ISSUERS)
      throw new FailedPreconditionError(`at most ${MAX_API_ISSUERS} issuers can be registered`);
    const { jwks, discovered } = await issuerKeys(input, fields, (i) =>
      discoverKeys(i, this.#registry.discoveryOptions()),
    );
    const now = this.#clock.now();
    const record: StsIssuerRecord = {
      issuer,
      audiences,
      keySource: fields.hasJwks ? 'jwks' : 'discovery',
      jwks,
      createdAt: now,
      updatedAt: now,
    };
    await this.#store.transaction(async (tx) => {
      await tx.sts.addIssuer(record);
      await this.#auditor.record(tx, ctx, {
        action: 'sts.issuer.add',
        target: issuer,
        outcome: 'success',
        details: { audiences, key_source: record.keySource },
      });
    });
    await this.#registry.reload();
    if (discovered) this.#registry.seedDiscoveryKeys(issuer, discovered);
    return this.getIssuer(issuer);
  }

  async getIssuer(issuer: string): Promise<RegisteredIssuer> {
    await this.#registry.poll();
    const r = this.#registry.issuer(issuer);
    if (!r) throw new NotFoundError(`issuer "${issuer.slice(0, 256)}" is not registered`);
    return r;
  }

  async listIssuers(): Promise<RegisteredIssuer[]> {
    await this.#registry.poll();
    return this.#registry.issuers();
  }

  async #removeIssuer(ctx: RequestContext, issuer: string): Promise<void> {
    if (this.#registry.isConfigIssuer(issuer))
      throw new FailedPreconditionError(
        `issuer "${issuer}" is defined in the server config; remove it there`,
      );
    await this.#store.transaction(async (tx) => {
      await tx.sts.removeIssuer(issuer);
      await this.#auditor.record(tx, ctx, {
        action: 'sts.issuer.remove',
        target: issuer,
        outcome: 'success',
      });
    });
    await this.#registry.reload();
  }

  async #createPolicy(ctx: RequestContext, input: PolicyInput): Promise<RegisteredPolicy> {
    this.#mustServeExchange('a trust policy');
    const { doc, template } = policyDocument(input, this.#trustDomain);
    const compiled = this.#registry.compile(doc); // the compiler's message on any error
    const p = compiled.policy;
    if (input.introspectionClient && !p.access_token)
      throw new InvalidArgumentError(
        `trust policy "${p.name}": introspection_client needs an access_token output`,
      );
    if (this.#registry.isConfigPolicy(p.name))
      throw new AlreadyExistsError(`trust policy "${p.name}" is defined in the server config`);
    await this.#registry.poll();
    if (!this.#registry.issuer(p.issuer))
      throw new FailedPreconditionError(
        `trust policy "${p.name}": issuer "${p.issuer}" is not registered (tessera issuer add)`,
      );
    if ((await this.#store.sts.listPolicies()).length >= MAX_API_POLICIES)
      throw new FailedPreconditionError(
        `at most ${MAX_API_POLICIES} trust policies can be created`,
      );
    const now = this.#clock.now();
    const record: TrustPolicyRecord = {
      name: p.name,
      issuer: p.issuer,
      condition: p.condition,
      attributeMapping: { ...p.attribute_mapping },
      spiffeId: p.spiffe_id ?? '',
      accessTokenAudience: p.access_token?.audience ?? '',
      accessTokenScopes: [...(p.access_token?.scopes ?? [])],
      accessTokenRequireDpop: p.access_token?.require_dpop ?? false,
      introspectionClient: input.introspectionClient ?? false,
      ttl: p.ttl,
      template,
      createdAt: now,
      updatedAt: now,
    };
    await this.#store.transaction(async (tx) => {
      await tx.sts.createPolicy(record);
      await this.#auditor.record(tx, ctx, {
        action: 'sts.policy.create',
        target: p.name,
        outcome: 'success',
        details: {
          issuer: p.issuer,
          condition: p.condition,
          ...(p.spiffe_id !== undefined ? { spiffe_id: p.spiffe_id } : {}),
          ...(p.access_token
            ? { access_token_audience: p.access_token.audience, scopes: p.access_token.scopes }
            : {}),
          ttl: p.ttl,
          ...(template ? { template } : {}),
        },
      });
    });
    await this.#registry.reload();
    return this.getPolicy(p.name);
  }

  async getPolicy(name: string): Promise<RegisteredPolicy> {
    await this.#registry.poll();
    return this.#policy(name);
  }

  #policy(name: string): RegisteredPolicy {
    const p = this.#registry.policy(name);
    if (!p) throw new NotFoundError(`trust policy "${name.slice(0, 64)}" does not exist`);
    return p;
  }

  async listPolicies(): Promise<RegisteredPolicy[]> {
    await this.#registry.poll();
    return this.#registry.policies();
  }

  async #deletePolicy(ctx: RequestContext, name: string): Promise<void> {
    if (this.#registry.isConfigPolicy(name))
      throw new FailedPreconditionError(
        `trust policy "${name}" is defined in the server config; remove it there`,
      );
    await this.#store.transaction(async (tx) => {
      const p = await tx.sts.deletePolicy(name);
      await this.#auditor.record(tx, ctx, {
        action: 'sts.policy.delete',
        target: name,
        outcome: 'success',
        details: { issuer: p.issuer },
      });
    });
    await this.#registry.reload();
  }

  /**
   * Dry run: the decision, the failing predicate and the mapped attributes. Nothing is issued,
   * nothing is stored, and no `sts.exchange` record is written.
   */
  async testPolicy(input: TestInput): Promise<TestResult> {
    await this.#registry.poll();
    let policy: CompiledTrustPolicy;
    if (input.policyName && input.policy)
      throw new InvalidArgumentError('give a policy name or an inline policy, not both');
    if (input.policyName) policy = this.#policy(input.policyName).compiled;
    else if (input.policy)
      policy = this.#registry.compile(
        policyDocument({ document: input.policy }, this.#trustDomain).doc,
      );
    else throw new InvalidArgumentError('a policy name or an inline policy is required');
    return dryRun(policy, input, (token) =>
      this.#verifySubject
        ? this.#verifySubject(token)
        : verifySubjectToken(token, this.#registry.trustedIssuers, this.#clock.now()),
    );
  }
}
