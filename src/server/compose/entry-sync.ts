// Wiring of entry sync for the composition root (compose/server.ts): the entry index that the
// sync streams serve from, kept current by following the datastore's changes. A committed change
// wakes the follower at once (commit notifications); the periodic task polls as a fallback.
import type { Clock } from '../../core/clock.ts';
import { type TrustDomain, serverId as serverSpiffeId } from '../../core/spiffe-id.ts';
import type { Store } from '../../store/types.ts';
import { EntryIndex } from '../registration/entry-index.ts';
import { ChangeFollower } from '../sync/change-follower.ts';
import { type FollowedChanges, followChanges } from '../sync/follow-changes.ts';
import type { ServerMetrics } from './metrics.ts';
import type { Task } from './tasks.ts';

export interface EntrySync {
  readonly index: EntryIndex;
  /** Stop it before the store closes. */
  readonly changes: FollowedChanges;
  readonly task: Task;
}

export async function startEntrySync(d: {
  store: Store;
  clock: Clock;
  td: TrustDomain;
  metrics: ServerMetrics;
  log: { warn(fields: Record<string, unknown>, msg: string): void };
  /** The fallback poll's period. */
  everyMs: number;
}): Promise<EntrySync> {
  const index = new EntryIndex(serverSpiffeId(d.td).toString());
  const follower = await ChangeFollower.start(d.store, index, d.clock);
  const changes = followChanges(d.store.notifications, follower, {
    onError: (e) =>
      d.log.warn({ err: e }, 'entry sync after a commit notification failed; polling retries'),
    onWake: (source) => d.metrics.changeNotifications.inc({ source }),
  });
  return {
    index,
    changes,
    task: { name: 'entry-sync', everyMs: d.everyMs, run: () => changes.poll() },
  };
}
