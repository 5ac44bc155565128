// `tessera svid fetch|watch`: this process's X509-SVIDs from the agent's Workload API
// (FetchX509SVID). `fetch` takes one message, prints it or writes it as PEM files; `watch` keeps
// the stream open and prints one line per change until SIGINT/SIGTERM.
import { mkdir, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { isTesseraError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { derToPem } from '../../crypto/x509/pem.ts';
import { Backoff, defaultSleep, isRetryable } from '../../client/workload/index.ts';
import type { WorkloadClient, X509Context, X509Svid } from '../../client/workload/index.ts';
import type { CliIo } from '../context.ts';
import type { Printer } from '../output.ts';
import { untilStopped } from '../signals.ts';
import {
  x509BundleHeaders,
  x509BundleRow,
  x509BundlesJson,
  x509SvidHeaders,
  x509SvidJson,
  x509SvidRow,
} from '../views.ts';
import {
  explainWorkloadError,
  WORKLOAD_CALL_TIMEOUT_MS,
  workloadAction,
  workloadCommand,
} from './workload-common.ts';

export function registerSvid(program: Command, io: CliIo): void {
  const svid = program
    .command('svid')
    .description("this process's X509-SVIDs from the agent's Workload API");
  registerFetch(svid, io);
  registerWatch(svid, io);
}

function registerFetch(svid: Command, io: CliIo): void {
  const cmd = workloadCommand(svid, 'fetch', 'fetch the X509-SVIDs once', io).option(
    '--write <dir>',
    'write svid.pem, svid.key, bundle.pem and federated-<td>.pem there instead of printing',
  );
  workloadAction<{ write?: string }>(cmd, io, async ({ opts, client, out }) => {
    const ctx = await client.fetchX509Context({ timeoutMs: WORKLOAD_CALL_TIMEOUT_MS });
    if (opts.write !== undefined) {
      await writeContext(ctx, opts.write, out);
      return;
    }
    if (out.json) {
      out.printJson({ svids: ctx.svids.map(x509SvidJson), bundles: x509BundlesJson(ctx) });
      return;
    }
    out.table(x509SvidHeaders, ctx.svids.map(x509SvidRow));
    out.line();
    out.table(x509BundleHeaders, x509BundlesJson(ctx).map(x509BundleRow));
  });
}

interface WrittenSvid {
  index: number;
  spiffeId: string;
  hint: string;
  expiresAt: string;
  svid: string;
  key: string;
}

/**
 * Files for an X509 context: svid.pem/svid.key for the default (first) SVID, svid.<n>.pem and
 * svid.<n>.key for the n-th further one, bundle.pem (the default SVID's trust domain) and
 * federated-<td>.pem for every other trust domain. Each file is replaced atomically; every key
 * is written before its certificate, and svid.pem last. A federated-<td>.pem left from an earlier
 * run whose trust domain the agent no longer sends is deleted: it must not stay trusted.
 */
async function writeContext(ctx: X509Context, dir: string, out: Printer): Promise<void> {
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
    if (td !== undefined && !Object.hasOwn(federated, td)) await unlink(path.join(dir, name));
  }
  const svids: WrittenSvid[] = [];
  // Further SVIDs first, the default one last: whoever waits for svid.pem finds everything else.
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
      ...files,
    });
  }
  const def = svids[0] as WrittenSvid;
  if (out.json) {
    out.printJson({
      spiffeId: def.spiffeId,
      expiresAt: def.expiresAt,
      files: { svid: def.svid, key: def.key, bundle, federated },
      svids,
    });
    return;
  }
  out.fields([
    ['SPIFFE ID', def.spiffeId],
    ['Expires at', def.expiresAt],
    ['Wrote', [def.svid, def.key, bundle, ...Object.values(federated)].join(', ')],
  ]);
  for (const s of svids.slice(1)) {
    out.fields([[`SVID ${s.index}`, `${s.spiffeId} → ${s.svid}, ${s.key}`]]);
  }
}

const pems = (ders: readonly Uint8Array[]): string => ders.map((d) => derToPem(d)).join('');

// --- watch -------------------------------------------------------------------------------------

function registerWatch(svid: Command, io: CliIo): void {
  const cmd = workloadCommand(
    svid,
    'watch',
    'print a line on every X509-SVID or bundle change until SIGINT/SIGTERM',
    io,
  );
  workloadAction(cmd, io, async ({ client, endpoint, out }) => {
    await untilStopped(io, (signal) =>
      watch(client, signal, out, io, (e) => explainWorkloadError(e, endpoint)),
    );
  });
}

/** What one update changed, relative to the previous state. */
interface SvidChanges {
  added: string[];
  removed: string[];
  rotated: string[];
  bundlesChanged: string[];
}

type WatchEvent = 'initial' | 'update' | 'no-identity';

/** The state a watch compares against: certificate serial per SVID, DER bundle per domain. */
interface WatchState {
  svids: Map<string, { spiffeId: string; fingerprint: string }>;
  bundles: Map<string, string>;
}

const svidKey = (s: X509Svid): string => (s.hint === '' ? s.spiffeId : `${s.spiffeId}#${s.hint}`);

function stateOf(ctx: X509Context | undefined): WatchState {
  const svids = new Map<string, { spiffeId: string; fingerprint: string }>();
  for (const s of ctx?.svids ?? []) {
    if (!svids.has(svidKey(s))) {
      svids.set(svidKey(s), {
        spiffeId: s.spiffeId,
        fingerprint: s.certificates[0]?.fingerprint256 ?? '',
      });
    }
  }
  const bundles = new Map<string, string>();
  for (const [td, cas] of ctx?.bundles ?? []) {
    bundles.set(td, cas.map((d) => Buffer.from(d).toString('base64')).join('.'));
  }
  return { svids, bundles };
}

function diffStates(prev: WatchState, next: WatchState): SvidChanges {
  const c: SvidChanges = { added: [], removed: [], rotated: [], bundlesChanged: [] };
  for (const [k, s] of next.svids) {
    const p = prev.svids.get(k);
    if (!p) c.added.push(k);
    else if (p.fingerprint !== s.fingerprint) c.rotated.push(k);
  }
  for (const k of prev.svids.keys()) if (!next.svids.has(k)) c.removed.push(k);
  const tds = new Set([...prev.bundles.keys(), ...next.bundles.keys()]);
  for (const td of [...tds].sort()) {
    if (prev.bundles.get(td) !== next.bundles.get(td)) c.bundlesChanged.push(td);
  }
  return c;
}

const changed = (c: SvidChanges): boolean =>
  c.added.length + c.removed.length + c.rotated.length + c.bundlesChanged.length > 0;

/**
 * Follows FetchX509SVID. The first failure (before any message) ends the command with its exit
 * code; later, a lost stream is reopened after a backoff, and PermissionDenied (every identity
 * of this process removed) is reported as a `no-identity` event before retrying.
 */
async function watch(
  client: WorkloadClient,
  signal: AbortSignal,
  out: Printer,
  io: CliIo,
  explain: (e: unknown) => unknown,
): Promise<void> {
  const backoff = new Backoff();
  let state: WatchState | undefined;
  while (!signal.aborted) {
    try {
      for await (const ctx of client.watchX509Context(signal)) {
        backoff.reset();
        const next = stateOf(ctx);
        const changes = diffStates(state ?? stateOf(undefined), next);
        if (state === undefined || changed(changes)) {
          emit(out, io, state === undefined ? 'initial' : 'update', changes, ctx);
        }
        state = next;
      }
      if (signal.aborted) return;
      throw new Error('the Workload API stream ended');
    } catch (e) {
      if (signal.aborted) return;
      if (state === undefined || !isRetryable(e)) throw e;
      const code = isTesseraError(e) ? e.code : 'unavailable';
      if (code === 'permission_denied' && state.svids.size > 0) {
        const next = stateOf(undefined);
        emit(out, io, 'no-identity', diffStates(state, next), undefined);
        state = next;
      }
      const delay = backoff.next();
      const why = explain(e);
      out.note(
        `warning: ${why instanceof Error ? why.message : String(why)}; retrying in ${Math.ceil(delay / 1000)}s`,
      );
      await defaultSleep(delay, signal);
    }
  }
}

function emit(
  out: Printer,
  io: CliIo,
  event: WatchEvent,
  c: SvidChanges,
  ctx: X509Context | undefined,
): void {
  const time = new Date().toISOString();
  const svids = ctx?.svids.map(x509SvidJson) ?? [];
  const bundles = ctx ? x509BundlesJson(ctx).map((b) => b.trustDomain) : [];
  if (out.json) {
    io.stdout.write(JSON.stringify({ time, event, ...c, svids, bundles }) + '\n');
    return;
  }
  const parts = [time, event];
  if (event !== 'initial') {
    if (c.added.length) parts.push(`added=${c.added.join(',')}`);
    if (c.rotated.length) parts.push(`rotated=${c.rotated.join(',')}`);
    if (c.removed.length) parts.push(`removed=${c.removed.join(',')}`);
    if (c.bundlesChanged.length) parts.push(`bundles-changed=${c.bundlesChanged.join(',')}`);
  }
  parts.push(`svids=${svids.map((s) => `${s.spiffeId}(expires ${s.expiresAt})`).join(',') || '-'}`);
  parts.push(`bundles=${bundles.join(',') || '-'}`);
  out.line(parts.join(' '));
}
