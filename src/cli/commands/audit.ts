// `tessera audit ...`: read, follow and verify the hash-chained audit log.
import type { Command } from 'commander';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import { AuditService } from '../../client/api/audit.ts';
import { nonNegativeBigInt, positiveInt } from '../args.ts';
import { adminAction, adminCommand, type AdminContext, type CliIo } from '../context.ts';
import { CliExit } from '../exit-codes.ts';
import { untilStopped } from '../signals.ts';
import { auditHeaders, auditJson, auditRow } from '../views.ts';

interface ListFlags {
  limit?: string;
  after?: string;
  action?: string;
  actor?: string;
  tail?: boolean;
  follow?: boolean;
}

export function registerAudit(program: Command, io: CliIo): void {
  const audit = program.command('audit').description('read and verify the audit log');
  const list = adminCommand(audit, 'list', 'list audit records, oldest first', io)
    .option('--limit <n>', 'at most this many records (server default 100, max 1000)')
    .option('--after <seq>', 'only records after this sequence number')
    .option('--action <action>', 'only this action, e.g. entry.create')
    .option('--actor <actor>', 'only this actor, e.g. local-admin or a SPIFFE ID')
    .option('--tail', 'the most recent records, newest first (ignores --after)')
    .option(
      '--follow',
      'keep printing new records as they are written, until SIGINT/SIGTERM (from --after SEQ, else from now)',
    );
  adminAction<ListFlags>(list, io, async (ctx) => {
    if (ctx.opts.follow) return follow(ctx);
    const { opts, client, out } = ctx;
    const res = await client(AuditService).listAuditRecords({
      limit: opts.limit === undefined ? 0 : positiveInt(opts.limit, '--limit', 1000),
      afterSeq: opts.after === undefined ? 0n : nonNegativeBigInt(opts.after, '--after'),
      action: opts.action ?? '',
      actor: opts.actor ?? '',
      tail: opts.tail ?? false,
    });
    if (out.json) out.printJson({ records: res.records.map(auditJson) });
    else out.table(auditHeaders, res.records.map(auditRow));
  });
  const verify = adminCommand(audit, 'verify', 'verify the hash chain of the whole log', io);
  adminAction(verify, io, async ({ client, out }) => {
    const res = await client(AuditService).verifyAuditLog({});
    if (out.json) {
      out.printJson({
        ok: res.ok,
        count: Number(res.count),
        ...(res.ok ? {} : { badSeq: Number(res.badSeq), reason: res.reason }),
      });
    } else if (res.ok) {
      out.line(`ok: ${res.count} records verified`);
    }
    if (!res.ok) {
      throw new CliExit('integrity', `audit chain broken at seq ${res.badSeq}: ${res.reason}`);
    }
  });
}

/**
 * `audit list --follow`: the FollowAuditRecords stream, printed as records arrive — a line per
 * record (JSON Lines with --output json). Without --after it starts at the current end of the
 * log, like `tail -f -n 0`. Ends with exit 0 on SIGINT/SIGTERM.
 */
async function follow({ opts, client, out, io }: AdminContext<ListFlags>): Promise<void> {
  if (opts.tail) throw new InvalidArgumentError('--tail cannot be combined with --follow');
  if (opts.limit !== undefined) {
    throw new InvalidArgumentError('--limit cannot be combined with --follow (it never stops)');
  }
  const audit = client(AuditService);
  const afterSeq =
    opts.after !== undefined
      ? nonNegativeBigInt(opts.after, '--after')
      : ((await audit.listAuditRecords({ tail: true, limit: 1 })).records[0]?.seq ?? 0n);
  if (!out.json) out.line(auditHeaders.join('  '));
  await untilStopped(io, async (signal) => {
    try {
      const stream = audit.followAuditRecords(
        { afterSeq, action: opts.action ?? '', actor: opts.actor ?? '' },
        { signal },
      );
      for await (const res of stream) {
        for (const r of res.records) {
          out.line(
            out.json
              ? JSON.stringify(auditJson(r))
              : auditRow(r)
                  .map((c) => c || '-')
                  .join('  '),
          );
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    }
    if (!signal.aborted) throw new TesseraError('unavailable', 'the server ended the audit stream');
  });
}
