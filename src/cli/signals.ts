// Long-running commands (server run, agent run) stop cleanly on SIGINT, SIGTERM or the injected
// signal (tests).
import type { CliIo } from './context.ts';

export async function untilStopped(
  io: CliIo,
  run: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  io.signal?.addEventListener('abort', stop, { once: true });
  if (io.signal?.aborted) stop();
  try {
    await run(ac.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    io.signal?.removeEventListener('abort', stop);
  }
}
