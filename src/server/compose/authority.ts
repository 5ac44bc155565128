// Wiring of the trust-domain authority: the key manager, the CA and JWT authorities with their
// rotation, the bundle caches that follow them (also across servers, through the `bundles` commit
// topic), the minter and the server's own SVID.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import { type TrustDomain, serverId as serverSpiffeId } from '../../core/spiffe-id.ts';
import type { KeyManager } from '../../crypto/key-manager.ts';
import { DiskKeyManager } from '../../crypto/keys/disk-key-manager.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { loadUpstreamCa } from '../../crypto/x509/upstream-ca.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import { createAuthorityFactory } from '../authority/authority-factory.ts';
import { AuthorityManager } from '../authority/authority-manager.ts';
import { MissingAuthorityKeyError } from '../authority/missing-key-error.ts';
import { BundleCache } from '../authority/bundle-cache.ts';
import { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import { ServerSvid } from '../authority/server-svid.ts';
import { Minter } from '../svid/minter.ts';
import type { ServerConfig } from './config/compile.ts';
import { refreshHintSeconds } from './config/load.ts';
import type { ServerMetrics } from './metrics.ts';
import type { Task } from './tasks.ts';

/** Where the disk key manager keeps authority keys, under the data directory. */
export const KEYS_DIR = 'keys';

export interface AuthorityParts {
  readonly authorities: AuthorityManager;
  readonly bundles: BundleCache;
  readonly federatedBundles: FederatedBundleCache;
  readonly minter: Minter;
  readonly serverSvid: ServerSvid;
}

export async function buildAuthority(
  config: ServerConfig,
  d: {
    store: Store;
    auditor: Auditor;
    clock: Clock;
    serverId: string;
    td: TrustDomain;
    metrics: ServerMetrics;
    log: Logger;
  },
): Promise<AuthorityParts> {
  const { store, auditor, clock, serverId, td, metrics, log } = d;
  const keys: KeyManager =
    config.key_manager === 'memory'
      ? new MemoryKeyManager()
      : await DiskKeyManager.create(path.join(config.data_dir, KEYS_DIR));
  const upstream =
    config.ca.upstream_cert_file || config.ca.upstream_key_file
      ? loadUpstreamCa(
          readFileSync(config.ca.upstream_cert_file, 'utf8'),
          readFileSync(config.ca.upstream_key_file, 'utf8'),
        )
      : null;
  const bundles = new BundleCache(store, td.name);
  // A key another server published reaches this server's bundle at its commit (NOTIFY), not
  // at the next periodic refresh. Lives as long as the store (closing it ends notifications).
  store.notifications.subscribe('bundles', () => {
    bundles.refresh().catch((e: unknown) => {
      log.warn({ err: e }, 'bundle refresh after a notification failed; the periodic one retries');
    });
  });
  let serverSvid: ServerSvid | null = null;
  const authorities = await AuthorityManager.create({
    store,
    keys,
    auditor,
    clock,
    serverId,
    trustDomain: td.name,
    refreshHintSeconds: refreshHintSeconds(config),
    publishDelayMs: config.authority_publish_delay,
    factory: createAuthorityFactory({
      keys,
      trustDomain: td.name,
      x509: { keyType: config.ca.key_type as never, ttlMs: config.ca.ttl, upstream },
      jwt: { keyType: config.jwt.key_type as never, ttlMs: config.jwt.ttl },
    }),
    onChange: (kind, event) => {
      metrics.rotations.inc({ kind, event });
      void bundles.refresh().catch((e: unknown) => log.warn({ err: e }, 'bundle refresh failed'));
      if (kind === 'x509' && event === 'activate') {
        void serverSvid
          ?.refresh(true)
          .catch((e: unknown) => log.error({ err: e }, 'server SVID refresh failed'));
      }
    },
  });
  await bundles.refresh();
  const federatedBundles = new FederatedBundleCache(store, td.name);
  await federatedBundles.refresh();
  const minter = new Minter({ authorities, clock, issuer: config.jwt.issuer });
  serverSvid = new ServerSvid({
    minter,
    clock,
    spiffeId: serverSpiffeId(td).toString(),
    ttlMs: config.default_x509_svid_ttl,
  });
  // A missing authority key does not stop the start: the server runs, not ready (/readyz and
  // `tessera healthcheck` say why), its API refusing handshakes without an X.509 authority,
  // so that the admin socket can take `tessera authority prepare/activate`.
  for (const e of authorities.missingKeys()) log.error(e.message);
  await serverSvid.refresh(true).catch((e: unknown) => {
    if (!(e instanceof MissingAuthorityKeyError)) throw e;
  });
  return { authorities, bundles, federatedBundles, minter, serverSvid };
}

/** The authorities' rotation, then the bundle and the server's own SVID that follow them. */
export function rotationTask(p: AuthorityParts, everyMs: number): Task {
  return {
    name: 'rotation',
    everyMs,
    run: async () => {
      await p.authorities.rotate();
      await p.bundles.refresh();
      await p.serverSvid.refresh();
    },
  };
}
