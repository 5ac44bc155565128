// Run as another uid by agent.test.ts: prints "ok <spiffe id>" or "error <grpc code> <message>".
import { fetchX509, workloadClient } from './workload-grpc.ts';

const client = workloadClient(process.argv[2] ?? '');
const s = fetchX509(client);
try {
  const m = await s.next(5000);
  console.log(`ok ${m.svids.map((v) => v.spiffe_id).join(',')}`);
} catch (e) {
  console.log(`error ${(e as { code?: number }).code ?? '?'} ${(e as Error).message}`);
} finally {
  s.cancel();
  client.close();
}
