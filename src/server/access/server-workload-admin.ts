// Admin operations on server workloads: validated at the edge, stored and audited in one
// transaction (audit fails closed). Deleting one that policies use is refused by the store.
import type { ServerWorkload } from '../../core/access.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AccessAdminDeps } from './access-admin-deps.ts';
import { auditedChange } from './audited-change.ts';
import { checkName, checkServerWorkload, type ServerWorkloadInput } from './access-fields.ts';

/** Audit details of a server workload: its fields, none of them secret. */
export const describeWorkload = (w: ServerWorkload) => ({
  host: w.host,
  port: w.port,
  protocol: w.protocol,
  path_prefix: w.pathPrefix,
  present: w.present,
  tls: w.tls,
  // Whether a CA is pinned, not the PEM (long, and public anyway: kept out of the record).
  tls_ca: w.tlsCa !== '',
  tls_decrypt: w.tlsDecrypt,
});

export class ServerWorkloadAdmin {
  readonly #d: Pick<AccessAdminDeps, 'store' | 'auditor' | 'clock'>;

  constructor(d: Pick<AccessAdminDeps, 'store' | 'auditor' | 'clock'>) {
    this.#d = d;
  }

  async create(ctx: RequestContext, input: ServerWorkloadInput): Promise<ServerWorkload> {
    const now = this.#d.clock.now();
    const w = { ...checkServerWorkload('', input), createdAt: now, updatedAt: now };
    return auditedChange(
      this.#d,
      ctx,
      'server_workload.create',
      w.name,
      (tx) => tx.access.createServerWorkload(w),
      describeWorkload,
    );
  }

  /** Replaces every field but the name. */
  async update(ctx: RequestContext, input: ServerWorkloadInput): Promise<ServerWorkload> {
    const fields = checkServerWorkload('', input);
    const { updated } = await auditedChange(
      this.#d,
      ctx,
      'server_workload.update',
      fields.name,
      async (tx) => {
        const old = await tx.access.getServerWorkload(fields.name);
        if (!old) throw notFound(fields.name);
        const updated = await tx.access.updateServerWorkload({
          ...fields,
          createdAt: old.createdAt,
          updatedAt: this.#d.clock.now(),
        });
        return { old, updated };
      },
      ({ old, updated }) => ({ ...describeWorkload(updated), previous: describeWorkload(old) }),
    );
    return updated;
  }

  async delete(ctx: RequestContext, name: string): Promise<ServerWorkload> {
    checkName('', 'name', name);
    return auditedChange(
      this.#d,
      ctx,
      'server_workload.delete',
      name,
      (tx) => tx.access.deleteServerWorkload(name),
      describeWorkload,
    );
  }

  async get(name: string): Promise<ServerWorkload> {
    checkName('', 'name', name);
    const w = await this.#d.store.access.getServerWorkload(name);
    if (!w) throw notFound(name);
    return w;
  }

  list(): Promise<ServerWorkload[]> {
    return this.#d.store.access.listServerWorkloads();
  }
}

const notFound = (name: string) => new NotFoundError(`server workload "${name}" does not exist`);
