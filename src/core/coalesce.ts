// One run at a time, however often it is asked for: a burst of "something changed, read now"
// signals (commit notifications, the periodic poll) causes one read in progress plus at most one
// more, which starts after the current one and so sees everything committed before it was asked.
export type Coalesced = () => Promise<void>;

/**
 * Wraps `run`. A call while no run is in progress starts one; a call during a run schedules one
 * follow-up run after it (shared by every call made meanwhile). Each call's promise settles with
 * the first run that started after the call, so awaiting it means "read since I asked".
 */
export function coalesce(run: () => Promise<void>): Coalesced {
  let current: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const start = (): Promise<void> => {
    const p = (async () => {
      try {
        await run();
      } finally {
        current = null;
      }
    })();
    current = p;
    return p;
  };
  return () => {
    if (current === null) return start();
    next ??= current
      .catch(() => {})
      .then(() => {
        next = null;
        return start();
      });
    return next;
  };
}
