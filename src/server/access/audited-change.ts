// The shape every access-model admin change has: the store change and its audit record in one
// transaction, so a change that cannot be audited is rolled back (audit fails closed).
import type { RequestContext } from '../../core/caller.ts';
import type { StoreAggregates } from '../../store/types.ts';
import type { AccessAdminDeps } from './access-admin-deps.ts';

/** Runs `change`, records `action` on `target` with `details` of its result, returns the result. */
export function auditedChange<T>(
  d: Pick<AccessAdminDeps, 'store' | 'auditor'>,
  ctx: RequestContext,
  action: string,
  target: string,
  change: (tx: StoreAggregates) => Promise<T>,
  details: (result: T) => Record<string, unknown>,
): Promise<T> {
  return d.store.transaction(async (tx) => {
    const result = await change(tx);
    await d.auditor.record(tx, ctx, {
      action,
      target,
      outcome: 'success',
      details: details(result),
    });
    return result;
  });
}
