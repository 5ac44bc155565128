// `tessera bundle show`: this trust domain's bundle, as PEM CA certificates (what `openssl
// verify -CAfile` takes) or as a SPIFFE bundle document (JWK Set with x509-svid/jwt-svid keys),
// from the server's admin socket. `bundle fetch` (workload-bundle.ts) asks the Workload API.
import { type Command, Option } from 'commander';
import { TesseraError } from '../../core/errors.ts';
import { bundleToPem, bundleToSpiffeJson } from '../../crypto/bundle-format.ts';
import { BundleService } from '../../client/api/bundle.ts';
import type { Bundle } from '../../client/api/types.ts';
import { adminAction, adminCommand, type Clients, type CliIo } from '../context.ts';
import { bundleFromWire } from '../../wire/bundle.ts';
import { bundleJson } from '../views.ts';
import { registerWorkloadBundle } from './workload-bundle.ts';
import { registerFederatedBundle } from './federated-bundle.ts';

export async function fetchBundle(client: Clients): Promise<Bundle> {
  const res = await client(BundleService).getBundle({});
  if (!res.bundle) throw new TesseraError('internal', 'the server returned no bundle');
  return res.bundle;
}

export function registerBundle(program: Command, io: CliIo): void {
  const bundle = program.command('bundle').description('trust bundles');
  const cmd = adminCommand(
    bundle,
    'show',
    "print the server's trust bundle (admin socket)",
    io,
  ).addOption(
    new Option('--format <format>', 'pem: CA certificates; spiffe: SPIFFE bundle JSON')
      .choices(['pem', 'spiffe'])
      .default('pem'),
  );
  adminAction<{ format: 'pem' | 'spiffe' }>(cmd, io, async ({ opts, client, out }) => {
    const wire = await fetchBundle(client);
    if (opts.format === 'spiffe') out.printJson(bundleToSpiffeJson(bundleFromWire(wire)));
    else if (out.json) out.printJson(bundleJson(wire));
    else io.stdout.write(bundleToPem(bundleFromWire(wire)));
  });
  registerWorkloadBundle(bundle, io);
  registerFederatedBundle(bundle, io);
}
