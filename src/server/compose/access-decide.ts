// Wiring of access decisions for the composition root: the live decider over the access store
// (following the `access` commit topic), its periodic reload task, and the TestAccess/WhatIfAccess
// handlers the AccessPolicyService registration spreads in (router.ts). checkAccessPolicy
// (server/access/check-policy.ts) is the access model's `checkPolicy`.
import type { Clock } from '../../core/clock.ts';
import type { Store } from '../../store/types.ts';
import { parseAccessDocument } from '../access/access-document.ts';
import { accessPolicySource, PolicyDecider, type DeciderLog } from '../access/decider.ts';
import {
  accessDecisionHandlers,
  type AccessDecisionHandlers,
} from '../api/handlers/access-decision-handlers.ts';
import type { Task } from './tasks.ts';

/** The fallback reload, for a notification another server's commit lost (PostgreSQL). */
export const ACCESS_RELOAD_INTERVAL_MS = 30_000;

export interface AccessDecisions {
  /** For the broker (decide after `await decider.sync()`) and the handlers. */
  readonly decider: PolicyDecider;
  /** TestAccess and WhatIfAccess, to spread into the AccessPolicyService implementation. */
  readonly handlers: AccessDecisionHandlers;
  readonly task: Task;
}

/** Loads the policy set (throws when the datastore cannot be read: the server does not start). */
export async function buildAccessDecisions(d: {
  store: Store;
  clock: Clock;
  log: DeciderLog;
}): Promise<AccessDecisions> {
  const source = accessPolicySource(d.store.access);
  const decider = await PolicyDecider.create({
    source,
    notifications: d.store.notifications,
    log: d.log,
  });
  return {
    decider,
    handlers: accessDecisionHandlers({
      decider,
      whatIf: { audit: d.store.audit, source },
      clock: d.clock,
      parseDocument: parseAccessDocument,
    }),
    task: {
      name: 'access-policies',
      everyMs: ACCESS_RELOAD_INTERVAL_MS,
      run: () => decider.refresh(),
    },
  };
}
