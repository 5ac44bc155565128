// `tessera x509 mint`: an X509-SVID for any SPIFFE ID in the trust domain. The key pair is made
// here and only the CSR is sent, so the private key never leaves this process.
import { generateKeyPairSync } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { bundleToPem } from '../../crypto/bundle-format.ts';
import { createCsr } from '../../crypto/x509/csr-create.ts';
import { derToPem } from '../../crypto/x509/pem.ts';
import { SvidService } from '../../client/api/svid.ts';
import { ttlSeconds } from '../args.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { isoFromSeconds } from '../output.ts';
import { bundleFromWire } from '../../wire/bundle.ts';
import { fetchBundle } from './bundle.ts';

interface MintFlags {
  spiffeId: string;
  ttl?: string;
  dns?: string[];
  write: string;
}

export function registerX509(program: Command, io: CliIo): void {
  const x509 = program.command('x509').description('X509-SVIDs');
  const cmd = adminCommand(x509, 'mint', 'mint an X509-SVID with a locally generated key', io)
    .requiredOption('--spiffe-id <id>', 'SPIFFE ID of the SVID')
    .option('--ttl <dur>', 'SVID lifetime, e.g. 1h (default: server default_x509_svid_ttl)')
    .option('--dns <name...>', 'DNS SAN, repeatable')
    .requiredOption('--write <dir>', 'directory for svid.pem, svid.key and bundle.pem');
  adminAction<MintFlags>(cmd, io, async ({ opts, client, out }) => {
    const ttl = opts.ttl === undefined ? 0 : ttlSeconds(opts.ttl, '--ttl');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = createCsr(privateKey, opts.spiffeId, { dnsNames: opts.dns ?? [] });
    const res = await client(SvidService).mintX509SVID({
      spiffeId: opts.spiffeId,
      csr,
      ttl,
      dnsNames: opts.dns ?? [],
    });
    const bundle = await fetchBundle(client);
    const files = {
      svid: path.join(opts.write, 'svid.pem'),
      key: path.join(opts.write, 'svid.key'),
      bundle: path.join(opts.write, 'bundle.pem'),
    };
    await mkdir(opts.write, { recursive: true, mode: 0o700 });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    // Key first: a reader that finds a new svid.pem must find its key beside it.
    await writeFileAtomic(files.key, keyPem, 0o600);
    await writeFileAtomic(files.svid, res.svidChain.map((d) => derToPem(d)).join(''), 0o644);
    await writeFileAtomic(files.bundle, bundleToPem(bundleFromWire(bundle)), 0o644);
    const expiresAt = isoFromSeconds(res.expiresAt);
    if (out.json) out.printJson({ spiffeId: opts.spiffeId, expiresAt, files });
    else
      out.fields([
        ['SPIFFE ID', opts.spiffeId],
        ['Expires at', expiresAt ?? '-'],
        ['Wrote', Object.values(files).join(', ')],
      ]);
  });
}
