// `tessera svid fetch|watch`: this process's X509-SVIDs from the agent's Workload API
// (FetchX509SVID). `fetch` takes one message, prints it or writes it as PEM files; `watch` keeps
// the stream open and prints one line per change until SIGINT/SIGTERM, and with --write keeps
// the PEM files current, running a command or signalling a process after each write.
import type { Command } from 'commander';
import { isTesseraError, TesseraError } from '../../core/errors.ts';
import { collect } from '../context.ts';
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
import { writeX509Files } from './svid-files.ts';
import {
  compileOutputs,
  keepJwtFile,
  runReload,
  type OutputFlags,
  type WatchOutputs,
} from './svid-outputs.ts';
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

/** Writes the files (see svid-files.ts) and prints what was written. */
async function writeContext(ctx: X509Context, dir: string, out: Printer): Promise<void> {
  const { bundle, federated, svids } = await writeX509Files(ctx, dir);
  const def = svids[0];
  if (!def) throw new Error('the Workload API returned no SVID');
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

// --- watch -------------------------------------------------------------------------------------

function registerWatch(svid: Command, io: CliIo): void {
  const cmd = workloadCommand(
    svid,
    'watch',
    'print a line on every X509-SVID or bundle change until SIGINT/SIGTERM',
    io,
  )
    .option(
      '--write <dir>',
      'keep svid.pem, svid.key (0600), bundle.pem and federated-<td>.pem there current across rotations',
    )
    .option(
      '--exec <command>',
      'after each write, run this shell command (waited for, never overlapping)',
    )
    .option(
      '--signal <sig>',
      'after each write, send this signal (e.g. HUP) to the pid in --pid-file',
    )
    .option('--pid-file <file>', 'file holding the pid to signal (read at every write)')
    .option(
      '--jwt-audience <aud>',
      'keep a JWT-SVID for this audience in --jwt-file, repeatable',
      collect,
    )
    .option(
      '--jwt-file <file>',
      'file to keep the JWT-SVID in (0600), refreshed at half its lifetime',
    );
  workloadAction<OutputFlags>(cmd, io, async ({ opts, client, endpoint, out }) => {
    const outputs = compileOutputs(opts);
    await untilStopped(io, async (stopped) => {
      // One signal for both loops: SIGINT/SIGTERM ends both, and so does a failure of the X509
      // watch (the JWT loop retries its own failures).
      const ac = new AbortController();
      const signal = ac.signal;
      stopped.addEventListener('abort', () => ac.abort(), { once: true });
      if (stopped.aborted) ac.abort();
      const jwt = outputs.jwt ? keepJwtFile(client, outputs.jwt, out, signal) : undefined;
      try {
        await watch(client, signal, out, io, (e) => explainWorkloadError(e, endpoint), outputs);
      } finally {
        ac.abort();
        await jwt;
      }
    });
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
  outputs: WatchOutputs,
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
          // Files first, then the line: a line means the files are in place.
          if (outputs.dir !== undefined) await writeFiles(ctx, outputs.dir);
          emit(out, io, state === undefined ? 'initial' : 'update', changes, ctx);
          state = next;
          if (outputs.dir !== undefined) await runReload(outputs.reload, out, signal);
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

/** A failed write ends the watch (not retried: the disk will not fix itself), naming --write. */
async function writeFiles(ctx: X509Context, dir: string): Promise<void> {
  try {
    await writeX509Files(ctx, dir);
  } catch (e) {
    throw new TesseraError('internal', `--write ${dir}: ${(e as Error).message}`, { cause: e });
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
