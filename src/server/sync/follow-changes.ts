// Wires a ChangeFollower to the store's commit notifications: a committed change (on this server,
// or on another server sharing PostgreSQL) makes the follower poll at once instead of at its next
// tick. The notification only says "poll now"; the follower still reads the feed from its own
// cursor, and the periodic poll stays as the fallback for anything a notification missed.
import { type Coalesced, coalesce } from '../../core/coalesce.ts';
import type { CommitNotifications, CommitSource } from '../../store/types.ts';
import type { ChangeFollower } from './change-follower.ts';

export interface FollowedChanges {
  /** One poll at a time: a burst of commits causes the poll in progress plus at most one more. */
  readonly poll: Coalesced;
  /** Stops listening for commits (the periodic poll is the caller's). */
  stop(): void;
}

export function followChanges(
  notifications: CommitNotifications,
  follower: ChangeFollower,
  hooks: { onError: (e: unknown) => void; onWake?: (source: CommitSource) => void },
): FollowedChanges {
  const poll = coalesce(() => follower.poll().then(() => undefined));
  const stop = notifications.subscribe('changes', (_topic, source) => {
    hooks.onWake?.(source);
    poll().catch(hooks.onError);
  });
  return { poll, stop };
}
