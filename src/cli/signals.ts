// Long-running commands (server run, agent run): they stop cleanly on SIGINT, SIGTERM or the
// injected signal (tests), and share the --log-format flag.
import { Option } from 'commander';
import type { CliIo } from './context.ts';

/** --log-format of the long-running commands (config log_format, env TESSERA_LOG_FORMAT). */
export function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    'log lines on stderr (config log_format; env TESSERA_LOG_FORMAT; default text on a terminal, else json)',
  ).choices(['text', 'json']);
}

export async function untilStopped(
  io: CliIo,
  run: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  // `on`, not `once`: a second signal during shutdown must not kill the process uncleanly.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
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
