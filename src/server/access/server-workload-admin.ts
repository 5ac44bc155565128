// Admin operations on server workloads: validated at the edge, stored and audited in one
// transaction (audit fails closed). Deleting one that policies use is refused by the store.
import type { ServerWorkload } from '../../core/access.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AccessAdminDeps } from './access-admin-deps.ts';
import { checkName, checkServerWorkload, type ServerWorkloadInput } from './access-fields.ts';

/** Audit details of a server workload: its fields, none of them secret. */
export const describeWorkload = (w: ServerWorkload) => ({
  host: w.host,
  port: w.port,
  protocol: w.protocol,
  path_prefix: w.pathPrefix,
  present: w.present,
});

export class ServerWorkloadAdmin {
  readonly #d: Pick<AccessAdminDeps, 'store' | 'auditor' | 'clock'>;

  constructor(d: Pick<AccessAdminDeps, 'store' | 'auditor' | 'clock'>) {
    this.#d = d;
  }

  async create(ctx: RequestContext, input: ServerWorkloadInput): Promise<ServerWorkload> {
    const now = this.#d.clock.now();
    const w = { ...checkServerWorkload('', input), createdAt: now, updatedAt: now };
    return this.#d.store.transaction(async (tx) => {
      const created = await tx.access.createServerWorkload(w);
      await this.#d.auditor.record(tx, ctx, {
        action: 'server_workload.create',
        target: w.name,
        outcome: 'success',
        details: describeWorkload(created),
      });
      return created;
    });
  }

  /** Replaces every field but the name. */
  async update(ctx: RequestContext, input: ServerWorkloadInput): Promise<ServerWorkload> {
    const fields = checkServerWorkload('', input);
    return this.#d.store.transaction(async (tx) => {
      const old = await tx.access.getServerWorkload(fields.name);
      if (!old) throw notFound(fields.name);
      const updated = await tx.access.updateServerWorkload({
        ...fields,
        createdAt: old.createdAt,
        updatedAt: this.#d.clock.now(),
      });
      await this.#d.auditor.record(tx, ctx, {
        action: 'server_workload.update',
        target: fields.name,
        outcome: 'success',
        details: { ...describeWorkload(updated), previous: describeWorkload(old) },
      });
      return updated;
    });
  }

  async delete(ctx: RequestContext, name: string): Promise<ServerWorkload> {
    checkName('', 'name', name);
    return this.#d.store.transaction(async (tx) => {
      const gone = await tx.access.deleteServerWorkload(name);
      await this.#d.auditor.record(tx, ctx, {
        action: 'server_workload.delete',
        target: name,
        outcome: 'success',
        details: describeWorkload(gone),
      });
      return gone;
    });
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
