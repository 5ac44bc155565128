// `tessera entry ...`: registration entries (create, update, delete, show, list).
import type { Command } from 'commander';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import { EntryService } from '../../client/api/entry.ts';
import type { Entry, Status } from '../../client/api/types.ts';
import { positiveInt, selectors } from '../args.ts';
import { adminAction, adminCommand, type AdminContext, type CliIo } from '../context.ts';
import { errorCodeFromStatus } from '../../wire/status.ts';
import { entryFields, entryHeaders, entryJson, entryRow } from '../views.ts';
import { addEntryFieldOptions, entryFromFlags, type EntryFlags } from './entry-fields.ts';
import { parentWarning, selectorTypeWarnings } from './entry-warnings.ts';

export function registerEntry(program: Command, io: CliIo): void {
  const entry = program.command('entry').description('manage registration entries');
  registerCreate(entry, io);
  registerUpdate(entry, io);
  registerDelete(entry, io);
  registerShow(entry, io);
  registerList(entry, io);
}

/** A failed batch item becomes the error its status code names (e.g. already_exists → exit 4). */
function checkStatus(status: Status | undefined, what: string): void {
  if (status && status.code !== '') {
    throw new TesseraError(errorCodeFromStatus(status.code), `${what}: ${status.message}`);
  }
}

function printEntry(ctx: AdminContext<object>, e: Entry | undefined): void {
  if (!e) throw new TesseraError('internal', 'the server returned no entry');
  if (ctx.out.json) ctx.out.printJson(entryJson(e));
  else ctx.out.fields(entryFields(e));
}

function registerCreate(entry: Command, io: CliIo): void {
  const cmd = addEntryFieldOptions(
    adminCommand(entry, 'create', 'create a registration entry', io),
    false,
  );
  adminAction<EntryFlags>(cmd, io, async (ctx) => {
    for (const [flag, v] of [
      ['--spiffe-id', ctx.opts.spiffeId],
      ['--parent-id', ctx.opts.parentId],
      ['--selector', ctx.opts.selector],
    ] as const) {
      if (v === undefined) throw new InvalidArgumentError(`${flag} is required`);
    }
    const { entry: e } = entryFromFlags(ctx.opts);
    const res = await ctx.client(EntryService).batchCreateEntry({ entries: [e] });
    const r = res.results[0];
    checkStatus(r?.status, 'cannot create entry');
    printEntry(ctx, r?.entry);
    if (r?.entry) await warnUndeliverable(ctx, r.entry.parentId, r.entry.selectors);
  });
}

/**
 * After a create: warnings on stderr (the exit code stays 0) when no built-in attestor produces a
 * selector's type or the parent ID names no agent. A server that cannot answer the parent check
 * costs a warning, not the command.
 */
async function warnUndeliverable(
  ctx: AdminContext<object>,
  parentId: string,
  selectors: readonly { type: string; value: string }[],
): Promise<void> {
  let kind: string | undefined;
  try {
    kind = (await ctx.client(EntryService).checkParent({ parentId })).kind;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    ctx.out.note(`warning: could not check the parent ID: ${why}`);
  }
  for (const w of selectorTypeWarnings(selectors, kind ?? '')) ctx.out.note(`warning: ${w}`);
  const parent = kind === undefined ? null : parentWarning(parentId, kind);
  if (parent) ctx.out.note(`warning: ${parent}`);
}

function registerUpdate(entry: Command, io: CliIo): void {
  const cmd = adminCommand(
    entry,
    'update',
    'change the given fields of an entry',
    io,
  ).requiredOption('--id <id>', 'entry ID');
  addEntryFieldOptions(cmd, true);
  adminAction<EntryFlags & { id: string }>(cmd, io, async (ctx) => {
    const { entry: e, mask } = entryFromFlags(ctx.opts);
    // An empty mask means "replace every field" on the wire: never send one by accident.
    if (mask.length === 0)
      throw new InvalidArgumentError('nothing to update: give at least one field flag');
    const res = await ctx
      .client(EntryService)
      .batchUpdateEntry({ updates: [{ entry: { ...e, id: ctx.opts.id }, mask }] });
    const r = res.results[0];
    checkStatus(r?.status, `cannot update entry ${ctx.opts.id}`);
    printEntry(ctx, r?.entry);
  });
}

function registerDelete(entry: Command, io: CliIo): void {
  const cmd = adminCommand(entry, 'delete', 'delete entries', io).requiredOption(
    '--id <id...>',
    'entry ID, repeatable',
  );
  adminAction<{ id: string[] }>(cmd, io, async (ctx) => {
    const res = await ctx.client(EntryService).batchDeleteEntry({ ids: ctx.opts.id });
    const results = res.results.map((r) => ({
      id: r.id,
      ok: r.status?.code === '' || r.status === undefined,
      ...(r.status?.code ? { code: r.status.code, message: r.status.message } : {}),
    }));
    if (ctx.out.json) ctx.out.printJson({ results });
    else for (const r of results) if (r.ok) ctx.out.line(`deleted ${r.id}`);
    // Report every failure, then exit with the first one's code.
    const failed = res.results.filter((r) => r.status && r.status.code !== '');
    for (const r of failed.slice(1))
      ctx.out.note(`error: cannot delete entry ${r.id}: ${r.status?.message}`);
    if (failed[0]) checkStatus(failed[0].status, `cannot delete entry ${failed[0].id}`);
  });
}

function registerShow(entry: Command, io: CliIo): void {
  const cmd = adminCommand(entry, 'show', 'show one entry', io)
    .argument('[id]', 'entry ID (or --id)')
    .option('--id <id>', 'entry ID');
  adminAction<{ id?: string }>(cmd, io, async (ctx) => {
    const [arg] = cmd.args;
    if (arg !== undefined && ctx.opts.id !== undefined && arg !== ctx.opts.id)
      throw new InvalidArgumentError(`two different entry IDs: ${arg} and --id ${ctx.opts.id}`);
    const id = arg ?? ctx.opts.id;
    if (id === undefined) throw new InvalidArgumentError('give the entry ID: entry show ID');
    const res = await ctx.client(EntryService).getEntry({ id });
    printEntry(ctx, res.entry);
  });
}

interface ListFlags {
  spiffeId?: string;
  parentId?: string;
  selector?: string;
  pageSize?: string;
  pageToken?: string;
  all?: boolean;
}

function registerList(entry: Command, io: CliIo): void {
  const cmd = adminCommand(entry, 'list', 'list entries', io)
    .option('--spiffe-id <id>', 'only entries with this SPIFFE ID')
    .option('--parent-id <id>', 'only entries with this parent ID')
    .option('--selector <type:value>', 'only entries whose selectors include this one')
    .option('--page-size <n>', 'entries per page (server default 100, max 1000)')
    .option('--page-token <token>', 'continue from a previous page')
    .option('--all', 'follow page tokens until every entry is listed');
  adminAction<ListFlags>(cmd, io, async (ctx) => {
    const o = ctx.opts;
    if (o.selector !== undefined) selectors([o.selector]);
    const client = ctx.client(EntryService);
    const entries: Entry[] = [];
    let token = o.pageToken ?? '';
    do {
      const res = await client.listEntries({
        bySpiffeId: o.spiffeId ?? '',
        byParentId: o.parentId ?? '',
        bySelector: o.selector ?? '',
        pageSize: o.pageSize === undefined ? 0 : positiveInt(o.pageSize, '--page-size', 1000),
        pageToken: token,
      });
      entries.push(...res.entries);
      token = res.nextPageToken;
    } while (o.all && token !== '');
    if (ctx.out.json)
      ctx.out.printJson({ entries: entries.map(entryJson), nextPageToken: token || null });
    else printEntryTable(ctx, entries, token);
  });
}

function printEntryTable(ctx: AdminContext<object>, entries: Entry[], token: string): void {
  ctx.out.table(entryHeaders, entries.map(entryRow));
  if (token) ctx.out.note(`more entries: --page-token ${token} (or --all)`);
}
