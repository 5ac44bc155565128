// The agent's identity wiring: entry sync restored from and persisted to the data directory, the
// X.509-SVID cache it feeds, and the workload identities served from it (compose.ts calls them).
import { type Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import { createWorkloadAttestors } from '../../plugins/workload-attestors/catalog.ts';
import { Backoff } from '../../client/workload/backoff.ts';
import { JwtMintBatcher } from '../cache/jwt-mint-batcher.ts';
import { JwtSvidCache } from '../cache/jwt-svid-cache.ts';
import { AttestationService } from '../attestation/attestation-service.ts';
import type { KernelSocketHolders } from '../attestation/kernel-socket-holders.ts';
import { SyncedEntryMatcher } from '../attestation/entry-matcher.ts';
import { attestorsSource } from '../attestation/workload-attestors.ts';
import { WorkloadIdentities } from '../cache/workload-identities.ts';
import type { ConditionVerdicts } from '../cache/condition-verdicts.ts';
import { workloadAttributeSource } from '../attestation/workload-attributes.ts';
import { release } from 'node:os';
import { X509SvidCache, type MintResult } from '../cache/x509-svid-cache.ts';
import { type AgentConfig } from '../config/compile.ts';
import type { AgentLifecycle } from '../identity/lifecycle.ts';
import { msFromSeconds } from '../../wire/time.ts';
import type { ServerLink } from '../identity/server-link.ts';
import { EntrySync } from '../sync/entry-sync.ts';
import { CoalescingWriter, SyncStateFile } from '../sync/sync-state-file.ts';
import type { CredentialCache } from '../cache/credential-cache.ts';
// For `tessera agent proxy rules` (the CLI imports only this root).
export { transparentRulesFromConfig } from '../proxy/transparent/config-rules.ts';
import type { ServerWorkloadSync } from '../sync/server-workloads.ts';

const SYNC_STATE_WRITE_DELAY_MS = 1000;

/**
 * Entry sync (restored from the data dir, persisted as it changes) and the X.509-SVID cache it
 * feeds. A corrupt state file is reported and the agent starts empty.
 */
export async function syncAndCache(
  config: AgentConfig,
  log: Logger,
  clock: Clock,
  link: ServerLink,
  lifecycle: AgentLifecycle,
  credentialCache: CredentialCache,
  verdicts: ConditionVerdicts,
  attributesFor: (entryId: string) => Readonly<Record<string, string>> | undefined,
  serverWorkloads: ServerWorkloadSync,
): Promise<{ sync: EntrySync; x509: X509SvidCache; stateWriter: CoalescingWriter }> {
  const stateFile = new SyncStateFile(config.data_dir, config.trust_domain);
  const x509 = new X509SvidCache({
    clock,
    maxSize: config.x509_svid_cache_max_size,
    mint: (params) => mintX509(link, params),
    attributesFor,
    log: (msg, fields) => log.warn(fields ?? {}, msg),
  });
  const sync = new EntrySync({
    clients: () => link.clients(),
    onRefused: (e, used) => lifecycle.refused(e, used?.identity ?? null),
    onBundle: async (b) => {
      await link.setBundle(b.x509Authorities.map((a) => a.der));
      x509.setBundle(b);
    },
    backoff: new Backoff({ initialMs: 250, maxMs: config.max_backoff }),
    serverBack: (fn) => link.onServerBack(fn),
    onFailure: (e, used) => link.noteFailure(e, used?.address ?? link.address),
    log: (msg, fields) => log.warn(fields ?? {}, msg),
    trustDomain: config.trust_domain,
    onAccessRevision: (revision, initial) => {
      credentialCache.noteAccessRevision(revision, initial);
      serverWorkloads.noteAccessRevision(revision, initial);
    },
    onPostureRevision: (revision) => verdicts.notePostureRevision(revision),
    onNodeChange: () => {
      verdicts.recheck();
      credentialCache.clear();
    },
  });
  // Entries and bundles kept from the last run serve until the server answers (its initial
  // message decides what stays).
  const restored = await stateFile.load().catch((e: unknown) => {
    log.error({ err: (e as Error).message }, 'ignoring the persisted sync state; starting empty');
    return null;
  });
  if (restored) {
    sync.restore(restored);
    if (restored.bundle) x509.setBundle(restored.bundle);
    if (restored.serverWorkloads) serverWorkloads.restore(restored.serverWorkloads);
    log.info(
      { entries: restored.entries.size, federatedBundles: restored.federatedBundles.size },
      'restored the sync state from the data dir',
    );
  }
  const stateWriter = new CoalescingWriter({
    write: () =>
      stateFile.save({
        entries: sync.entries,
        bundle: sync.bundle,
        federatedBundles: sync.federatedBundles,
        serverWorkloads: serverWorkloads.index.all,
      }),
    delayMs: SYNC_STATE_WRITE_DELAY_MS,
    log: (msg, fields) => log.warn(fields ?? {}, msg),
  });
  sync.onChange(() => stateWriter.schedule());
  serverWorkloads.onChange(() => stateWriter.schedule());
  return { sync, x509, stateWriter };
}

/**
 * What the Workload API serves: caller attestation (attestors, entry matching) and the SVID
 * caches with batched JWT mints.
 */
export function workloadIdentities(
  config: AgentConfig,
  p: {
    clock: Clock;
    log: Logger;
    link: ServerLink;
    sync: EntrySync;
    x509: X509SvidCache;
    verdicts: ConditionVerdicts;
    /** The kernel's socket-holder iterator, when it can be used here. */
    owners?: KernelSocketHolders;
  },
  env: Record<string, string | undefined> | undefined,
): { identities: WorkloadIdentities; attestation: AttestationService } {
  const { clock, link, sync, x509 } = p;
  const attestors = createWorkloadAttestors(config.workload_attestors, {
    procRoot: '/proc',
    env: env ?? process.env,
  });
  // Concurrent JWT-SVID cache misses go to the server together (BatchNewJWTSVID).
  const jwtMints = new JwtMintBatcher({
    mintBatch: async (items) => {
      const r = await link.clients().svid.batchNewJWTSVID({
        params: items.map((i) => ({
          entryId: i.entryId,
          audience: [...i.audience],
          ...(i.attributes ? { attributes: i.attributes } : {}),
        })),
      });
      return r.results.map((x) =>
        x.status && x.status.code !== ''
          ? { code: x.status.code, message: x.status.message }
          : { token: x.token, expiresAt: msFromSeconds(x.expiresAt) },
      );
    },
    mintOne: async ({ entryId, audience, attributes }) => {
      const r = await link.clients().svid.newJWTSVID({
        entryId,
        audience: [...audience],
        ...(attributes ? { attributes } : {}),
      });
      return { token: r.token, expiresAt: msFromSeconds(r.expiresAt) };
    },
  });
  const attestation = new AttestationService({
    selectors: attestorsSource(attestors),
    attributes: workloadAttributeSource({ procRoot: '/proc', kernelRelease: release() }),
    entries: new SyncedEntryMatcher(sync, clock),
    clock,
    log: p.log,
    ...(p.owners ? { tcp: { kernel: p.owners } } : {}),
  });
  const identities = new WorkloadIdentities({
    trustDomain: config.trust_domain,
    sync,
    x509,
    jwt: new JwtSvidCache(clock, config.jwt_svid_cache_max_size),
    clock,
    allowedForeignJwtClaims: config.allowed_foreign_jwt_claims,
    mintJwt: (entryId, audience, attributes) => jwtMints.mint(entryId, audience, attributes),
    verdicts: p.verdicts,
  });
  return { identities, attestation };
}

async function mintX509(
  link: ServerLink,
  params: { entryId: string; csr: Uint8Array; attributes?: Readonly<Record<string, string>> }[],
): Promise<MintResult[]> {
  const res = await link.clients().svid.batchNewX509SVID({ params });
  return res.results.map((r, i): MintResult => {
    const entryId = params[i]?.entryId ?? r.entryId;
    return r.status?.code
      ? { entryId, ok: false, reason: r.status.message }
      : { entryId, ok: true, chainDer: r.svidChain };
  });
}
