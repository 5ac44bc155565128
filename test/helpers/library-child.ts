// A workload that holds a FetchX509SVID stream open and maps or unmaps a shared library when
// told to (posture.test.ts: re-checked while running). Usage: library-child.ts SOCKET LIBRARY.
// Commands on stdin, one a line: `load` (dlopen LIBRARY), `unload` (dlclose it), `open` (a new
// stream on the same connection). Prints one line per event:
//   `svids <spiffe ids, sorted, comma-separated>` per stream message,
//   `error <grpc code> <details>` when a stream ends, `loaded`, `unloaded`.
import { createInterface } from 'node:readline';
import koffi from 'koffi';
import { header, workloadClient, type X509Response } from './workload-grpc.ts';

const [socketPath, library] = process.argv.slice(2);
if (!socketPath || !library) throw new Error('usage: library-child.ts SOCKET LIBRARY');
const client = workloadClient(socketPath);
let mapped: { unload(): void } | undefined;

function open(): void {
  const call = (
    client.FetchX509SVID as (req: object, md: unknown) => NodeJS.EventEmitter & { cancel(): void }
  )({}, header());
  call.on('data', (m: X509Response) => {
    console.log(
      `svids ${m.svids
        .map((s) => s.spiffe_id)
        .sort()
        .join(',')}`,
    );
  });
  call.on('error', (e: Error & { code?: number; details?: string }) => {
    console.log(`error ${e.code ?? '?'} ${e.details ?? e.message}`);
  });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  switch (line.trim()) {
    case 'load':
      mapped = koffi.load(library) as unknown as { unload(): void };
      console.log('loaded');
      break;
    case 'unload':
      mapped?.unload();
      mapped = undefined;
      console.log('unloaded');
      break;
    case 'open':
      open();
      break;
  }
});
process.stdin.on('end', () => process.exit(0));
open();
