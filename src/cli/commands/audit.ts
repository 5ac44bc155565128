// `tessera audit ...`: read and verify the hash-chained audit log.
import type { Command } from 'commander';
import { AuditService } from '../../client/api/audit.ts';
import { nonNegativeBigInt, positiveInt } from '../args.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { CliExit } from '../exit-codes.ts';
import { auditHeaders, auditJson, auditRow } from '../views.ts';

interface ListFlags {
  limit?: string;
  after?: string;
  action?: string;
  actor?: string;
  tail?: boolean;
}

export function registerAudit(program: Command, io: CliIo): void {
  const audit = program.command('audit').description('read and verify the audit log');
  const list = adminCommand(audit, 'list', 'list audit records, oldest first', io)
    .option('--limit <n>', 'at most this many records (server default 100, max 1000)')
    .option('--after <seq>', 'only records after this sequence number')
    .option('--action <action>', 'only this action, e.g. entry.create')
    .option('--actor <actor>', 'only this actor, e.g. local-admin or a SPIFFE ID')
    .option('--tail', 'the most recent records, newest first (ignores --after)');
  adminAction<ListFlags>(list, io, async ({ opts, client, out }) => {
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
