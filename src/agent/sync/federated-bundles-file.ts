// The federated bundles the agent holds, persisted in its data dir so that a restarted agent
// still has them while the server is away. One file, federated-bundles.json, in the SPIFFE
// bundle-map form ({"trust_domains": {"<td>": <SPIFFE bundle>}}), 0600, replaced atomically.
import { readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Bundle } from '../../core/bundle.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { bundleToSpiffeJson, parseSpiffeBundle } from '../../crypto/bundle-format.ts';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';

export const FEDERATED_BUNDLES_FILE = 'federated-bundles.json';
/** Bounds what load() reads: a corrupt or planted huge file must not exhaust memory. */
export const MAX_FEDERATED_BUNDLES_FILE_BYTES = 32 * 1024 * 1024;

export class FederatedBundlesFile {
  readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, FEDERATED_BUNDLES_FILE);
  }

  /** The persisted bundles (empty when there is no file). Throws InvalidArgumentError when unreadable. */
  async load(ownTrustDomain: string): Promise<Map<string, Bundle>> {
    const bad = (why: string) => new InvalidArgumentError(`${this.file}: ${why}`);
    let text: string;
    try {
      if ((await stat(this.file)).size > MAX_FEDERATED_BUNDLES_FILE_BYTES)
        throw bad(`larger than ${MAX_FEDERATED_BUNDLES_FILE_BYTES} bytes`);
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw e;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw bad(`not valid JSON (${(e as Error).message})`);
    }
    const map = (doc as { trust_domains?: unknown } | null)?.trust_domains;
    if (typeof map !== 'object' || map === null || Array.isArray(map))
      throw bad('"trust_domains" is missing or not an object');
    const out = new Map<string, Bundle>();
    for (const [td, bundle] of Object.entries(map as Record<string, unknown>)) {
      const name = TrustDomain.parse(td).name;
      if (name === ownTrustDomain) continue;
      out.set(name, parseSpiffeBundle(JSON.stringify(bundle), name));
    }
    return out;
  }

  /** Replaces the file (atomically, 0600); removes it when there are none. */
  async save(bundles: ReadonlyMap<string, Bundle>): Promise<void> {
    if (bundles.size === 0) {
      await unlink(this.file).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      return;
    }
    const trustDomains: Record<string, unknown> = {};
    for (const [td, b] of [...bundles].sort(([a], [c]) => a.localeCompare(c)))
      trustDomains[td] = bundleToSpiffeJson(b);
    await writeFileAtomic(this.file, JSON.stringify({ trust_domains: trustDomains }), 0o600);
  }
}
