// Checkpoints POSTed to an HTTP collector (a log service the database's admins cannot write to):
// one JSON checkpoint per request; bounded attempts with exponential backoff, then the error goes
// to the caller (the next interval tries again with a newer head).
import type { CheckpointSink } from './checkpoint-writer.ts';
import { postWithRetries } from './http-post.ts';

export function httpCheckpointSink(o: {
  url: string;
  timeoutMs: number;
  attempts: number;
  fetch?: typeof fetch;
}): CheckpointSink {
  return {
    async write(line) {
      await postWithRetries({
        url: o.url,
        body: line.trimEnd(),
        headers: {},
        timeoutMs: o.timeoutMs,
        attempts: o.attempts,
        ...(o.fetch ? { fetch: o.fetch } : {}),
      });
    },
    close: async () => {},
  };
}
