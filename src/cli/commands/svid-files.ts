// X509-SVIDs as PEM files, for `svid fetch --write` and `svid watch --write`: the layout, and a
// replace order that never shows a reader a torn file.
import { mkdir, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { derToPem } from '../../crypto/x509/pem.ts';
import type { X509Context, X509Svid } from '../../client/workload/index.ts';

export interface WrittenSvid {
  index: number;
  spiffeId: string;
  hint: string;
  expiresAt: string;
  serialNumber: string;
  svid: string;
  key: string;
}

export interface WrittenFiles {
  bundle: string;
  /** Trust domain → file. */
  federated: Record<string, string>;
  /** The default SVID first. */
  svids: WrittenSvid[];
}

/**
 * Files for an X509 context: svid.pem/svid.key for the default (first) SVID, svid.<n>.pem and
 * svid.<n>.key for the n-th further one, bundle.pem (the default SVID's trust domain) and
 * federated-<td>.pem for every other trust domain. Each file is replaced atomically (a temporary
 * file in the same directory, fsynced, renamed, the directory fsynced). Order: bundles first,
 * then per SVID its key before its certificate, the further SVIDs before the default one, so
 * svid.pem is written last: whoever waits for it finds everything else. Files left from an
 * earlier context that this one no longer has (a federated-<td>.pem whose trust domain the agent
 * stopped sending, a svid.<n>.* beyond the current count) are deleted: they must not stay
 * trusted or in use.
 */
export async function writeX509Files(ctx: X509Context, dir: string): Promise<WrittenFiles> {
  const [first] = ctx.svids;
  if (!first) throw new Error('the Workload API returned no SVID');
  const own = first.id.trustDomain.name;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const bundle = path.join(dir, 'bundle.pem');
  await writeFileAtomic(bundle, pems(ctx.bundles.get(own) ?? []), 0o644);
  const federated: Record<string, string> = {};
  for (const td of [...ctx.bundles.keys()].sort()) {
    if (td === own) continue;
    federated[td] = path.join(dir, `federated-${td}.pem`);
    await writeFileAtomic(federated[td], pems(ctx.bundles.get(td) ?? []), 0o644);
  }
  for (const name of await readdir(dir)) {
    const td = /^federated-(.+)\.pem$/.exec(name)?.[1];
    const n = /^svid\.([1-9][0-9]*)\.(?:pem|key)$/.exec(name)?.[1];
    const stale =
      (td !== undefined && !Object.hasOwn(federated, td)) ||
      (n !== undefined && Number(n) >= ctx.svids.length);
    if (stale) await unlink(path.join(dir, name));
  }
  const svids: WrittenSvid[] = [];
  for (let i = ctx.svids.length - 1; i >= 0; i--) {
    const s = ctx.svids[i] as X509Svid;
    const base = i === 0 ? 'svid' : `svid.${i}`;
    const files = { svid: path.join(dir, `${base}.pem`), key: path.join(dir, `${base}.key`) };
    const keyPem = s.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await writeFileAtomic(files.key, keyPem, 0o600);
    await writeFileAtomic(files.svid, pems(s.chainDer), 0o644);
    svids.unshift({
      index: i,
      spiffeId: s.spiffeId,
      hint: s.hint,
      expiresAt: new Date(s.expiresAt).toISOString(),
      serialNumber: s.certificates[0]?.serialNumber ?? '',
      ...files,
    });
  }
  return { bundle, federated, svids };
}

const pems = (ders: readonly Uint8Array[]): string => ders.map((d) => derToPem(d)).join('');
