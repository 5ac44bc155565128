// `tessera audit ...`: read, follow and verify the hash-chained audit log.
import { createPublicKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import {
  type AuditCheckpoint,
  CHECKPOINT_KEY_FILE,
  CheckpointError,
  keyIdOf,
  parseCheckpoints,
} from '../../core/audit-checkpoint.ts';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import { AuditService } from '../../client/api/audit.ts';
import { nonNegativeBigInt, positiveInt } from '../args.ts';
import { adminAction, adminCommand, type AdminContext, type CliIo } from '../context.ts';
import { CliExit } from '../exit-codes.ts';
import { outputFormats, Printer, type OutputFormat } from '../output.ts';
import { serverDataDirDefault } from '../paths.ts';
import { untilStopped } from '../signals.ts';
import { auditHeaders, auditJson, auditRow } from '../views.ts';

interface ListFlags {
  limit?: string;
  after?: string;
  action?: string;
  actor?: string;
  correlationId?: string;
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
    .option(
      '--correlation-id <id>',
      'only the records of one request, e.g. access.request → access.authorization → access.credential',
    )
    .option('--tail', 'the most recent records, newest first (ignores --after)')
    .option(
      '--follow',
      'keep printing new records as they are written, until SIGINT/SIGTERM (from --after SEQ, else from now)',
    );
  adminAction<ListFlags>(list, io, async (ctx) => {
    if (ctx.opts.follow) return follow(ctx);
    const { opts, client, out } = ctx;
    if (opts.correlationId !== undefined) {
      if (opts.correlationId === '' || opts.correlationId.length > 128)
        throw new InvalidArgumentError('--correlation-id: 1..128 characters');
      if (opts.tail)
        throw new InvalidArgumentError('--tail cannot be combined with --correlation-id');
    }
    const res = await client(AuditService).listAuditRecords({
      limit: opts.limit === undefined ? 0 : positiveInt(opts.limit, '--limit', 1000),
      afterSeq: opts.after === undefined ? 0n : nonNegativeBigInt(opts.after, '--after'),
      action: opts.action ?? '',
      actor: opts.actor ?? '',
      correlationId: opts.correlationId ?? '',
      tail: opts.tail ?? false,
    });
    if (out.json) out.printJson({ records: res.records.map(auditJson) });
    else if (opts.correlationId) {
      // One request's chain: its details say what was decided and released (never a secret).
      out.table(
        [...auditHeaders, 'DETAILS'],
        res.records.map((r) => [...auditRow(r), JSON.stringify(auditJson(r).details)]),
      );
    } else out.table(auditHeaders, res.records.map(auditRow));
  });
  const verify = adminCommand(
    audit,
    'verify',
    'verify the hash chain of the whole log against its recorded head (and signed checkpoints)',
    io,
  )
    .option(
      '--checkpoints <file>',
      'signed checkpoints (JSON lines) the server wrote outside the database: the log must reach each, with the same hash',
    )
    .option(
      '--checkpoint-key <file>',
      'PEM public key checking them (tessera audit checkpoint-key); default: the key in --data-dir',
    )
    .option('--data-dir <dir>', "the server's data directory (for its checkpoint key)");
  adminAction<VerifyFlags>(verify, io, async ({ client, out, opts }) => {
    const checkpoints = opts.checkpoints ? await readCheckpoints(opts, io) : null;
    const res = await client(AuditService).verifyAuditLog({
      checkpoints: (checkpoints ?? []).map((c) => ({ seq: BigInt(c.seq), hash: c.hash })),
    });
    const last = checkpoints?.[checkpoints.length - 1];
    if (out.json) {
      out.printJson({
        ok: res.ok,
        count: Number(res.count),
        headSeq: Number(res.headSeq),
        ...(res.ok ? {} : { badSeq: Number(res.badSeq), reason: res.reason }),
        ...(res.missingTo > 0n
          ? { missing: { from: Number(res.missingFrom), to: Number(res.missingTo) } }
          : {}),
        ...(checkpoints
          ? {
              checkpoints: {
                verified: Number(res.checkpointsVerified),
                total: checkpoints.length,
                ...(last ? { lastSeq: last.seq, lastTime: new Date(last.time).toISOString() } : {}),
              },
            }
          : {}),
      });
    } else if (res.ok) {
      out.line(
        `ok: ${res.count} records verified` +
          (checkpoints
            ? `; ${checkpoints.length} checkpoints match` +
              (last ? `, the last at seq ${last.seq} (${new Date(last.time).toISOString()})` : '')
            : ''),
      );
    }
    if (!res.ok) {
      throw new CliExit('integrity', `audit chain broken at seq ${res.badSeq}: ${res.reason}`);
    }
  });
  const key = audit
    .command('checkpoint-key')
    .description(
      "print the public key of the server's audit checkpoint key (keep a copy outside the server)",
    )
    .option('--data-dir <dir>', "the server's data directory")
    .addOption(
      new Option('--output <format>', 'output format').choices(outputFormats).default('table'),
    );
  key.action(async () => {
    const opts = key.opts<{ dataDir?: string; output: OutputFormat }>();
    const file = path.join(opts.dataDir ?? serverDataDirDefault(io.env), CHECKPOINT_KEY_FILE);
    const pub = createPublicKey(await readKeyFile(file));
    const pem = pub.export({ type: 'spki', format: 'pem' }) as string;
    const out = new Printer(io.stdout, io.stderr, opts.output);
    if (out.json) out.printJson({ keyId: keyIdOf(pub), publicKey: pem });
    else io.stdout.write(pem);
  });
}

interface VerifyFlags {
  checkpoints?: string;
  checkpointKey?: string;
  dataDir?: string;
}

/** A checkpoint file is read whole: bounded, as it grows by one line per interval at most. */
const MAX_CHECKPOINT_FILE = 256 * 1024 * 1024;

/**
 * Reads and checks the checkpoint file: every signature (a forged or foreign line is an integrity
 * failure, not skipped), and that the head never went backwards between two checkpoints — which
 * would mean the log was cut short while the server kept running.
 */
async function readCheckpoints(opts: VerifyFlags, io: CliIo): Promise<AuditCheckpoint[]> {
  const keyFile =
    opts.checkpointKey ??
    path.join(opts.dataDir ?? serverDataDirDefault(io.env), CHECKPOINT_KEY_FILE);
  const pub = createPublicKey(await readKeyFile(keyFile));
  if (pub.asymmetricKeyType !== 'ed25519')
    throw new InvalidArgumentError(`--checkpoint-key: ${keyFile} is not an Ed25519 key`);
  const file = opts.checkpoints as string;
  const size = await stat(file).then(
    (st) => st.size,
    (e: Error) => {
      throw new InvalidArgumentError(`--checkpoints: cannot read ${file}: ${e.message}`);
    },
  );
  if (size > MAX_CHECKPOINT_FILE)
    throw new InvalidArgumentError(`--checkpoints: ${file} is larger than 256 MiB`);
  let all: AuditCheckpoint[];
  try {
    all = parseCheckpoints(await readFile(file, 'utf8'), pub);
  } catch (e) {
    if (e instanceof CheckpointError) throw new CliExit('integrity', `${file}: ${e.message}`);
    throw e;
  }
  const kept: AuditCheckpoint[] = [];
  for (const c of all) {
    const prev = kept[kept.length - 1];
    if (prev && c.seq < prev.seq)
      throw new CliExit(
        'integrity',
        `${file}: the checkpoint at ${new Date(c.time).toISOString()} names seq ${c.seq}, after one at seq ${prev.seq}: the log was cut short between them`,
      );
    if (prev && c.seq === prev.seq) {
      if (c.hash !== prev.hash)
        throw new CliExit(
          'integrity',
          `${file}: two checkpoints at seq ${c.seq} name different hashes: the log was rewritten between them`,
        );
      kept[kept.length - 1] = c;
      continue;
    }
    kept.push(c);
  }
  return kept;
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(
      `cannot read the checkpoint key ${file}: ${(e as Error).message}`,
    );
  }
}

/**
 * `audit list --follow`: the FollowAuditRecords stream, printed as records arrive — a line per
 * record (JSON Lines with --output json). Without --after it starts at the current end of the
 * log, like `tail -f -n 0`. Ends with exit 0 on SIGINT/SIGTERM.
 */
async function follow({ opts, client, out, io }: AdminContext<ListFlags>): Promise<void> {
  if (opts.tail) throw new InvalidArgumentError('--tail cannot be combined with --follow');
  if (opts.correlationId !== undefined)
    throw new InvalidArgumentError('--correlation-id cannot be combined with --follow');
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
