// Admin operations on access policies: the policy's own fields (access-fields.ts), then the
// injected check of its client pattern and condition, then the store (which refuses unknown
// server workloads and providers) and the audit record in one transaction. Changing or deleting
// a policy ends the leases released under it.
import type { AccessPolicy } from '../../core/access.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { AccessPolicyFilter } from '../../store/types.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AccessAdminDeps } from './access-admin-deps.ts';
import { auditedChange } from './audited-change.ts';
import {
  type AccessPolicyInput,
  type At,
  checkName,
  checkPolicyFields,
  withAt,
} from './access-fields.ts';

/** Audit details of a policy (keys avoid the redactor's secret-looking words). */
export const describePolicy = (p: AccessPolicy) => ({
  client: p.client,
  server: p.server,
  provider: p.credentialProvider,
  condition: p.condition,
  effect: p.effect,
});

/** Every check of a policy short of the store's references. */
export function checkPolicy(
  d: Pick<AccessAdminDeps, 'checkPolicy'>,
  at: At,
  input: AccessPolicyInput,
  now: number,
): AccessPolicy {
  const p: AccessPolicy = { ...checkPolicyFields(at, input), createdAt: now, updatedAt: now };
  withAt(at, () => d.checkPolicy(p));
  return p;
}

export class AccessPolicyAdmin {
  readonly #d: AccessAdminDeps;

  constructor(d: AccessAdminDeps) {
    this.#d = d;
  }

  async create(ctx: RequestContext, input: AccessPolicyInput): Promise<AccessPolicy> {
    const p = checkPolicy(this.#d, '', input, this.#d.clock.now());
    return auditedChange(
      this.#d,
      ctx,
      'access_policy.create',
      p.name,
      (tx) => tx.access.createAccessPolicy(p),
      describePolicy,
    );
  }

  /** Replaces every field but the name; then ends the leases released under the old version. */
  async update(
    ctx: RequestContext,
    input: AccessPolicyInput,
  ): Promise<{ policy: AccessPolicy; leasesEnded: number }> {
    const p = checkPolicy(this.#d, '', input, this.#d.clock.now());
    const { updated: policy } = await auditedChange(
      this.#d,
      ctx,
      'access_policy.update',
      p.name,
      async (tx) => {
        const old = await tx.access.getAccessPolicy(p.name);
        if (!old) throw notFound(p.name);
        return {
          old,
          updated: await tx.access.updateAccessPolicy({ ...p, createdAt: old.createdAt }),
        };
      },
      ({ old, updated }) => ({ ...describePolicy(updated), previous: describePolicy(old) }),
    );
    const leasesEnded = await this.#d.revocation.revoke(
      { policy: p.name },
      `access policy "${p.name}" changed`,
    );
    return { policy, leasesEnded };
  }

  async delete(
    ctx: RequestContext,
    name: string,
  ): Promise<{ policy: AccessPolicy; leasesEnded: number }> {
    checkName('', 'name', name);
    const policy = await auditedChange(
      this.#d,
      ctx,
      'access_policy.delete',
      name,
      (tx) => tx.access.deleteAccessPolicy(name),
      describePolicy,
    );
    const leasesEnded = await this.#d.revocation.revoke(
      { policy: name },
      `access policy "${name}" deleted`,
    );
    return { policy, leasesEnded };
  }

  async get(name: string): Promise<AccessPolicy> {
    checkName('', 'name', name);
    const p = await this.#d.store.access.getAccessPolicy(name);
    if (!p) throw notFound(name);
    return p;
  }

  list(filter: AccessPolicyFilter = {}): Promise<AccessPolicy[]> {
    if (filter.server !== undefined) checkName('', 'server', filter.server);
    return this.#d.store.access.listAccessPolicies(filter);
  }
}

const notFound = (name: string) => new NotFoundError(`access policy "${name}" does not exist`);
