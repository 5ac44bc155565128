// `tessera bundle fetch`: the trust bundles this process sees through the agent's Workload API —
// X.509 CA certificates per trust domain (FetchX509Bundles) or JWT authority keys as a JWK set
// per trust domain (FetchJWTBundles). One message, then it exits.
import { type Command, Option } from 'commander';
import type { CliIo } from '../context.ts';
import { jwtBundlesJson, x509BundleSetJson } from '../views.ts';
import { WORKLOAD_CALL_TIMEOUT_MS, workloadAction, workloadCommand } from './workload-common.ts';

export function registerWorkloadBundle(bundle: Command, io: CliIo): void {
  const cmd = workloadCommand(
    bundle,
    'fetch',
    'fetch the trust bundles this process sees',
    io,
  ).addOption(
    new Option(
      '--format <format>',
      'pem: X.509 CA certificates per trust domain; jwks: JWT authorities as a JWK set per trust domain',
    )
      .choices(['pem', 'jwks'])
      .default('pem'),
  );
  workloadAction<{ format: 'pem' | 'jwks' }>(cmd, io, async ({ opts, client, out }) => {
    if (opts.format === 'jwks') {
      const set = await client.fetchJWTBundles({ timeoutMs: WORKLOAD_CALL_TIMEOUT_MS });
      out.printJson(jwtBundlesJson(set));
      return;
    }
    const set = x509BundleSetJson(
      await client.fetchX509Bundles({ timeoutMs: WORKLOAD_CALL_TIMEOUT_MS }),
    );
    if (out.json) {
      out.printJson(set);
      return;
    }
    // Lines outside BEGIN/END are ignored by PEM readers, so this still works as a CA file.
    for (const [td, pems] of Object.entries(set)) io.stdout.write(`# ${td}\n${pems.join('')}`);
  });
}
