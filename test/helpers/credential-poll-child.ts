// Run as another uid by test/access-e2e.test.ts: asks the agent's credential API for a server
// workload every few milliseconds and prints one line whenever the answer changes:
//   "<epoch ms> allowed <secret value>" or "<epoch ms> denied <reason>" or "<epoch ms> error <code>".
// Usage: node credential-poll-child.ts <socket> <server workload> [interval ms]
import { CredentialDenied, WorkloadClient } from '../../src/client/workload/index.ts';

const [socket, server, every] = process.argv.slice(2);
const client = new WorkloadClient({ address: `unix://${socket}` });
const intervalMs = Number(every ?? 10);
let last = '';
process.on('SIGTERM', () => {
  client.close();
  process.exit(0);
});
for (;;) {
  let now: string;
  try {
    const c = await client.getCredential({ serverWorkload: server ?? '' }, { timeoutMs: 5000 });
    const v = c.value;
    now = `allowed ${v.kind === 'password' ? v.password : v.kind === 'token' ? v.token : 'aws'}`;
  } catch (e) {
    now =
      e instanceof CredentialDenied
        ? `denied ${e.reason}`
        : `error ${(e as { code?: string }).code ?? (e as Error).message}`;
  }
  if (now !== last) {
    process.stdout.write(`${Date.now()} ${now}\n`);
    last = now;
  }
  await new Promise((r) => setTimeout(r, intervalMs));
}
