// Admin operations on federation: relationships (create, update, delete, get, list, refresh) and
// foreign bundles set by hand (set, list, delete). Every change commits with its audit record in
// one transaction; bundle changes are then told to the manager's onBundleUpdated listeners.
//
// Relationships from the server config (`federation.relationships`) are applied at start with
// source "config": created or updated to match the file, and config relationships no longer in
// the file are deleted. The admin API may not update or delete them (the next start would undo
// it): change the file instead. API relationships for a trust domain the config also names are
// taken over by the config.
import type { Bundle } from '../../core/bundle.ts';
import type { Clock } from '../../core/clock.ts';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
} from '../../core/errors.ts';
import {
  type FederationInput,
  type FederationRelationship,
  type FederationSource,
  initialFederationStatus,
  validateFederationInput,
} from '../../core/federation.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import type { Store, StoreAggregates } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { parseBundleInput } from './bundle-input.ts';
import {
  type FederationManager,
  MAX_RELATIONSHIPS,
  type RefreshResult,
} from './federation-manager.ts';

export interface RelationshipRequest {
  trustDomain: string;
  bundleEndpointUrl: string;
  profile: string;
  endpointSpiffeId: string;
  /** Optional initial bundle of the trust domain: SPIFFE bundle JSON or PEM; "" = none. */
  trustBundle: string;
}

export interface ConfigRelationship extends RelationshipRequest {
  /** Where the trust bundle came from, for messages. */
  trustBundleFile: string;
}

export interface FederationServiceOptions {
  store: Pick<Store, 'transaction' | 'bundles' | 'federations'>;
  auditor: Auditor;
  clock: Clock;
  /** This server's own trust domain: never federated with, its bundle never touched here. */
  trustDomain: string;
  manager: FederationManager;
}

const CONFIG_CONTEXT: RequestContext = {
  caller: { kind: 'local-admin' },
  correlationId: 'config',
};

export class FederationService {
  readonly manager: FederationManager;
  readonly #store: Pick<Store, 'transaction' | 'bundles' | 'federations'>;
  readonly #auditor: Auditor;
  readonly #clock: Clock;
  readonly #td: string;

  constructor(o: FederationServiceOptions) {
    this.#store = o.store;
    this.#auditor = o.auditor;
    this.#clock = o.clock;
    this.#td = o.trustDomain;
    this.manager = o.manager;
  }

  async create(ctx: RequestContext, req: RelationshipRequest): Promise<FederationRelationship> {
    const { input, bundle } = this.#checkRequest(req);
    const count = (await this.#store.federations.list(MAX_RELATIONSHIPS)).length;
    if (count >= MAX_RELATIONSHIPS) {
      throw new ResourceExhaustedError(
        `at most ${MAX_RELATIONSHIPS} federation relationships are supported`,
      );
    }
    const created = await this.#store.transaction(async (tx) => {
      await this.#needBundleForSpiffe(tx, input, bundle);
      const r = await tx.federations.create(this.#newRelationship(input, 'api'));
      if (bundle) await tx.bundles.put(bundle);
      await this.#auditor.record(tx, ctx, {
        action: 'federation.create',
        target: input.trustDomain,
        outcome: 'success',
        details: { ...describe(r), trustBundleSet: bundle !== null },
      });
      return r;
    });
    if (bundle) this.manager.notifyBundleUpdated(input.trustDomain, bundle);
    return created;
  }

  async update(ctx: RequestContext, req: RelationshipRequest): Promise<FederationRelationship> {
    const { input, bundle } = this.#checkRequest(req);
    const updated = await this.#store.transaction(async (tx) => {
      const existing = await this.#existing(tx, input.trustDomain);
      if (existing.source === 'config') throw managedByConfig(input.trustDomain);
      await this.#needBundleForSpiffe(tx, input, bundle);
      const r = await this.#replace(tx, input, 'api');
      if (bundle) await tx.bundles.put(bundle);
      await this.#auditor.record(tx, ctx, {
        action: 'federation.update',
        target: input.trustDomain,
        outcome: 'success',
        details: { ...describe(r), previous: describe(existing), trustBundleSet: bundle !== null },
      });
      return r;
    });
    if (bundle) this.manager.notifyBundleUpdated(input.trustDomain, bundle);
    return updated;
  }

  /** Deletes the relationship; the trust domain's bundle stays (delete it with deleteBundle). */
  async delete(ctx: RequestContext, trustDomain: string): Promise<FederationRelationship> {
    const td = parseTd(trustDomain);
    return this.#store.transaction(async (tx) => {
      const existing = await this.#existing(tx, td);
      if (existing.source === 'config') throw managedByConfig(td);
      const gone = await tx.federations.delete(td);
      await this.#auditor.record(tx, ctx, {
        action: 'federation.delete',
        target: td,
        outcome: 'success',
        details: describe(gone),
      });
      return gone;
    });
  }

  async get(trustDomain: string): Promise<FederationRelationship> {
    const td = parseTd(trustDomain);
    return this.#existing(this.#store, td);
  }

  list(): Promise<FederationRelationship[]> {
    return this.#store.federations.list(MAX_RELATIONSHIPS);
  }

  /** Fetches now; the outcome (also a failure) is audited as `federation.refresh`. */
  async refresh(
    ctx: RequestContext,
    trustDomain: string,
  ): Promise<{ result: RefreshResult; relationship: FederationRelationship }> {
    const td = parseTd(trustDomain);
    const result = await this.manager.refresh(td);
    await this.#auditor.log(ctx, {
      action: 'federation.refresh',
      target: td,
      outcome: result.ok ? 'success' : 'error',
      details: result.ok
        ? { updated: result.updated, sequence: result.bundle.sequence }
        : { error: result.error },
    });
    return { result, relationship: await this.get(td) };
  }

  /** Stores a foreign bundle given by hand (an operator override: no sequence check). */
  async setBundle(ctx: RequestContext, trustDomain: string, text: string): Promise<Bundle> {
    const td = this.#foreignTd(trustDomain);
    const bundle = parseBundleInput(text, td);
    await this.#store.transaction(async (tx) => {
      if (bundle.x509Authorities.length === 0) {
        const rel = await tx.federations.get(td);
        if (rel?.profile === 'https_spiffe') {
          throw new FailedPreconditionError(
            `the bundle of "${td}" authenticates its https_spiffe bundle endpoint: it needs an X.509 authority`,
          );
        }
      }
      const previous = await tx.bundles.get(td);
      await tx.bundles.put(bundle);
      await this.#auditor.record(tx, ctx, {
        action: 'federation.bundle.set',
        target: td,
        outcome: 'success',
        details: {
          sequence: bundle.sequence,
          previousSequence: previous ? previous.sequence : null,
          x509Authorities: bundle.x509Authorities.length,
          jwtAuthorities: bundle.jwtAuthorities.length,
        },
      });
    });
    this.manager.notifyBundleUpdated(td, bundle);
    return bundle;
  }

  /** Every stored bundle but this server's own. */
  async listBundles(): Promise<Bundle[]> {
    return (await this.#store.bundles.list()).filter((b) => b.trustDomain !== this.#td);
  }

  /** Refused while an https_spiffe relationship needs the bundle to authenticate its endpoint. */
  async deleteBundle(ctx: RequestContext, trustDomain: string): Promise<void> {
    const td = this.#foreignTd(trustDomain);
    await this.#store.transaction(async (tx) => {
      const rel = await tx.federations.get(td);
      if (rel?.profile === 'https_spiffe') {
        throw new FailedPreconditionError(
          `the bundle of "${td}" authenticates its https_spiffe bundle endpoint: delete the federation relationship first`,
        );
      }
      const previous = await tx.bundles.get(td);
      if (!previous) throw new NotFoundError(`no bundle stored for "${td}"`);
      await tx.bundles.delete(td);
      await this.#auditor.record(tx, ctx, {
        action: 'federation.bundle.delete',
        target: td,
        outcome: 'success',
        details: { sequence: previous.sequence },
      });
    });
    this.manager.notifyBundleUpdated(td, null);
  }

  /**
   * Makes the stored config relationships match `rels` (the config file's): creates or updates
   * each, deletes config relationships no longer listed. A trust bundle from the config is stored
   * only when the trust domain has no bundle yet (a fetched one is newer). Audited as
   * `federation.config.*` with correlation id "config".
   */
  async applyConfig(rels: readonly ConfigRelationship[]): Promise<void> {
    const checked = rels.map((r, i) => {
      try {
        return this.#checkRequest(r);
      } catch (e) {
        throw new InvalidArgumentError(
          `config: federation.relationships[${i}]: ${(e as Error).message}`,
        );
      }
    });
    // Servers sharing a datastore start with the same config: when another one inserted the same
    // relationship meanwhile, try again (it is then found and left as is).
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#applyOnce(checked);
        return;
      } catch (e) {
        if (!(e instanceof AlreadyExistsError) || attempt >= 3) throw e;
      }
    }
  }

  async #applyOnce(checked: { input: FederationInput; bundle: Bundle | null }[]): Promise<void> {
    const seeded: Bundle[] = [];
    await this.#store.transaction(async (tx) => {
      const wanted = new Set(checked.map((c) => c.input.trustDomain));
      for (const { input, bundle } of checked) {
        const existing = await tx.federations.get(input.trustDomain);
        if (bundle && !(await tx.bundles.get(input.trustDomain))) {
          await tx.bundles.put(bundle);
          seeded.push(bundle);
        }
        await this.#needBundleForSpiffe(tx, input, null).catch((e: unknown) => {
          throw new InvalidArgumentError(
            `config: federation.relationships: "${input.trustDomain}": ${(e as Error).message}: set trust_bundle_file`,
          );
        });
        if (existing && sameParameters(existing, input) && existing.source === 'config') continue;
        const r = existing
          ? await this.#replace(tx, input, 'config')
          : await tx.federations.create(this.#newRelationship(input, 'config'));
        await this.#auditor.record(tx, CONFIG_CONTEXT, {
          action: existing ? 'federation.update' : 'federation.create',
          target: input.trustDomain,
          outcome: 'success',
          details: {
            ...describe(r),
            trustBundleSet: seeded.some((b) => b.trustDomain === input.trustDomain),
          },
        });
      }
      for (const r of await tx.federations.list(MAX_RELATIONSHIPS)) {
        if (r.source !== 'config' || wanted.has(r.trustDomain)) continue;
        await tx.federations.delete(r.trustDomain);
        await this.#auditor.record(tx, CONFIG_CONTEXT, {
          action: 'federation.delete',
          target: r.trustDomain,
          outcome: 'success',
          details: { ...describe(r), reason: 'no longer in the server config' },
        });
      }
    });
    for (const b of seeded) this.manager.notifyBundleUpdated(b.trustDomain, b);
  }

  #checkRequest(req: RelationshipRequest): { input: FederationInput; bundle: Bundle | null } {
    const input = validateFederationInput(req, this.#td);
    const bundle =
      req.trustBundle === ''
        ? null
        : parseBundleInput(req.trustBundle, input.trustDomain, 'trust_bundle');
    if (bundle && input.profile === 'https_spiffe' && bundle.x509Authorities.length === 0) {
      throw new InvalidArgumentError(
        'trust_bundle: has no X.509 authority to authenticate the https_spiffe endpoint with',
      );
    }
    return { input, bundle };
  }

  async #needBundleForSpiffe(
    tx: StoreAggregates,
    input: FederationInput,
    bundle: Bundle | null,
  ): Promise<void> {
    if (input.profile !== 'https_spiffe' || bundle) return;
    const stored = await tx.bundles.get(input.trustDomain);
    if (!stored || stored.x509Authorities.length === 0) {
      throw new InvalidArgumentError(
        `trust_bundle: required for https_spiffe: no X.509 bundle of "${input.trustDomain}" is stored to authenticate the endpoint`,
      );
    }
  }

  async #existing(
    s: Pick<StoreAggregates, 'federations'>,
    td: string,
  ): Promise<FederationRelationship> {
    const r = await s.federations.get(td);
    if (!r) throw new NotFoundError(`federation relationship with "${td}" not found`);
    return r;
  }

  /** New parameters take effect at once: the schedule and failure count start over. */
  async #replace(
    tx: StoreAggregates,
    input: FederationInput,
    source: FederationSource,
  ): Promise<FederationRelationship> {
    const r = await tx.federations.update({ ...input, source, updatedAt: this.#clock.now() });
    const status = { ...r.status, nextAttemptAt: 0, failures: 0 };
    await tx.federations.setStatus(input.trustDomain, status);
    return { ...r, status };
  }

  #newRelationship(input: FederationInput, source: FederationSource): FederationRelationship {
    const now = this.#clock.now();
    return { ...input, source, createdAt: now, updatedAt: now, status: initialFederationStatus };
  }

  #foreignTd(trustDomain: string): string {
    const td = parseTd(trustDomain);
    if (td === this.#td) {
      throw new InvalidArgumentError(
        `trust_domain: "${td}" is this server's own trust domain; its bundle is managed by its authorities`,
      );
    }
    return td;
  }
}

function parseTd(text: string): string {
  try {
    return TrustDomain.parse(text).name;
  } catch (e) {
    throw new InvalidArgumentError(`trust_domain: ${(e as Error).message}`);
  }
}

function sameParameters(r: FederationRelationship, i: FederationInput): boolean {
  return (
    r.bundleEndpointUrl === i.bundleEndpointUrl &&
    r.profile === i.profile &&
    r.endpointSpiffeId === i.endpointSpiffeId
  );
}

function describe(r: FederationRelationship): Record<string, unknown> {
  return {
    bundleEndpointUrl: r.bundleEndpointUrl,
    profile: r.profile,
    endpointSpiffeId: r.endpointSpiffeId,
    source: r.source,
  };
}

function managedByConfig(td: string): FailedPreconditionError {
  return new FailedPreconditionError(
    `the federation relationship with "${td}" comes from the server config (federation.relationships): change it there`,
  );
}
