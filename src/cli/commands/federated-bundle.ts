// `tessera bundle set|list|delete`: bundles of other trust domains (federated bundles) kept by
// the server, over the admin socket. `bundle show` (bundle.ts) prints this trust domain's own.
import type { Command } from 'commander';
import { TesseraError } from '../../core/errors.ts';
import { BundleService } from '../../client/api/bundle.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { bundleJson } from '../views.ts';
import { readBundleFile } from './federation.ts';
import { federatedBundleHeaders, federatedBundleRow } from './federation-views.ts';

export function registerFederatedBundle(bundle: Command, io: CliIo): void {
  const set = adminCommand(
    bundle,
    'set',
    "store another trust domain's bundle by hand (SPIFFE bundle JSON or PEM)",
    io,
  )
    .requiredOption('--trust-domain <td>', 'the foreign trust domain')
    .option('--file <file>', 'bundle file; "-" or absent: standard input', '-');
  adminAction<{ trustDomain: string; file: string }>(set, io, async ({ opts, client, out }) => {
    const text = await readBundleFile(opts.file, '--file');
    const res = await client(BundleService).setFederatedBundle({
      trustDomain: opts.trustDomain,
      bundle: text,
    });
    const b = res.bundle;
    if (!b) throw new TesseraError('internal', 'the server returned no bundle');
    if (out.json) out.printJson(bundleJson(b));
    else
      out.line(
        `bundle of ${b.trustDomain} set (sequence ${b.sequence}, ${b.x509Authorities.length} X.509 authorities, ${b.jwtAuthorities.length} JWT authorities)`,
      );
  });

  const list = adminCommand(bundle, 'list', 'list the bundles of other trust domains', io);
  adminAction<object>(list, io, async ({ client, out }) => {
    const res = await client(BundleService).listFederatedBundles({});
    if (out.json) out.printJson({ bundles: res.bundles.map(bundleJson) });
    else out.table(federatedBundleHeaders, res.bundles.map(federatedBundleRow));
  });

  const del = adminCommand(
    bundle,
    'delete',
    "delete another trust domain's bundle",
    io,
  ).requiredOption('--trust-domain <td>', 'the foreign trust domain');
  adminAction<{ trustDomain: string }>(del, io, async ({ opts, client, out }) => {
    await client(BundleService).deleteFederatedBundle({ trustDomain: opts.trustDomain });
    if (out.json) out.printJson({ trustDomain: opts.trustDomain, deleted: true });
    else out.line(`bundle of ${opts.trustDomain} deleted`);
  });
}
