// A process is a list of periodic tasks run until the signal aborts. A failing run is reported
// and retried at the next tick (a datastore outage must not kill the server; it recovers when
// the database returns).
export interface Task {
  readonly name: string;
  readonly everyMs: number;
  run(): Promise<void>;
}

export async function runTasks(
  signal: AbortSignal,
  tasks: readonly Task[],
  onError: (name: string, e: unknown) => void,
): Promise<void> {
  if (signal.aborted) return;
  await Promise.all(tasks.map((t) => loop(signal, t, onError)));
}

async function loop(
  signal: AbortSignal,
  t: Task,
  onError: (name: string, e: unknown) => void,
): Promise<void> {
  while (!signal.aborted) {
    await sleep(t.everyMs, signal);
    if (signal.aborted) return;
    try {
      await t.run();
    } catch (e) {
      onError(t.name, e);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
