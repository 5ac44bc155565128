// `tessera posture ...`: vulnerability reports from scanners (docs/posture.md) over the admin
// socket. `import` reads the scanner's JSON (bounded to the server's 8 MiB limit) and sends it;
// the server parses and stores it, or refuses it naming the problem, with nothing stored.
import type { Command } from 'commander';
import { readBounded, TooLargeError } from '../bounded-read.ts';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import { POSTURE_LIMITS, POSTURE_SCANNERS } from '../../core/posture.ts';
import { type PostureReport, PostureService } from '../../client/api/posture.ts';
import { adminAction, adminCommand, type AdminContext, type CliIo } from '../context.ts';
import { isoFromMillis } from '../output.ts';

interface ImportFlags {
  format?: string;
  subject?: string[];
}

export function postureJson(r: PostureReport): Record<string, unknown> {
  return {
    subject: r.subject,
    kind: r.kind,
    scanner: r.scanner,
    artifact: r.artifact,
    critical: r.critical,
    high: r.high,
    medium: r.medium,
    low: r.low,
    unknown: r.unknown,
    fixable: r.fixable,
    scannedAt: isoFromMillis(r.scannedAt),
    importVersion: Number(r.importVersion),
    importedAt: isoFromMillis(r.importedAt),
  };
}

const HEADERS = [
  'SUBJECT',
  'KIND',
  'SCANNER',
  'CRIT',
  'HIGH',
  'MED',
  'LOW',
  'UNK',
  'FIXABLE',
  'IMPORT',
];

function row(r: PostureReport): string[] {
  return [
    r.subject,
    r.kind,
    r.scanner,
    String(r.critical),
    String(r.high),
    String(r.medium),
    String(r.low),
    String(r.unknown),
    String(r.fixable),
    String(r.importVersion),
  ];
}

async function readReport(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readBounded(file, POSTURE_LIMITS.reportBytes));
  } catch (e) {
    if (e instanceof TooLargeError) {
      throw new InvalidArgumentError(
        `${file === '-' ? 'standard input' : file} is larger than ${POSTURE_LIMITS.reportBytes} bytes, the limit of a report; nothing was stored`,
      );
    }
    const code = (e as NodeJS.ErrnoException).code;
    throw new TesseraError(
      code === 'ENOENT' ? 'not_found' : 'invalid_argument',
      `cannot read ${file}: ${code ?? 'error'}`,
    );
  }
}

function printReports(ctx: AdminContext<object>, reports: readonly PostureReport[]): void {
  if (ctx.out.json) ctx.out.printJson({ reports: reports.map(postureJson) });
  else ctx.out.table(HEADERS, reports.map(row));
}

export function registerPosture(program: Command, io: CliIo): void {
  const posture = program
    .command('posture')
    .description('vulnerability posture from scanner reports (trivy, grype, osv-scanner)');

  const imp = adminCommand(
    posture,
    'import',
    'import a scanner report; it replaces the previous report of each subject it names',
    io,
  )
    .argument('<file>', 'the scanner\'s JSON output ("-" = standard input)')
    .option('--format <format>', `the scanner: ${POSTURE_SCANNERS.join('|')} (required)`)
    .option(
      '--subject <sha256>',
      'image digest or binary sha256 the report is about, besides those it names (repeatable)',
      (v: string, all: string[] = []) => [...all, v],
    );
  adminAction<ImportFlags>(imp, io, async (ctx) => {
    const format = ctx.opts.format;
    if (format === undefined) throw new InvalidArgumentError('--format is required');
    if (!(POSTURE_SCANNERS as readonly string[]).includes(format))
      throw new InvalidArgumentError(
        `--format: "${format}" is not one of ${POSTURE_SCANNERS.join(', ')}`,
      );
    const report = await readReport(imp.args[0] ?? '-');
    const res = await ctx
      .client(PostureService)
      .importPosture({ format, report, subjects: ctx.opts.subject ?? [] });
    if (ctx.out.json) {
      ctx.out.printJson({
        importVersion: Number(res.importVersion),
        reports: res.reports.map(postureJson),
      });
      return;
    }
    ctx.out.line(`import ${res.importVersion}: ${res.reports.length} subject(s)`);
    ctx.out.table(HEADERS, res.reports.map(row));
  });

  const list = adminCommand(posture, 'list', 'list the stored reports, one per subject', io);
  adminAction<object>(list, io, async (ctx) => {
    const res = await ctx.client(PostureService).listPosture({});
    printReports(ctx, res.reports);
  });

  const show = adminCommand(posture, 'show', 'show the stored report of one subject', io).argument(
    '<subject>',
    'image digest or binary sha256 ("sha256:<hex>")',
  );
  adminAction<object>(show, io, async (ctx) => {
    const res = await ctx.client(PostureService).getPosture({ subject: show.args[0] ?? '' });
    const r = res.report;
    if (!r) throw new TesseraError('internal', 'the server returned no report');
    if (ctx.out.json) {
      ctx.out.printJson(postureJson(r));
      return;
    }
    ctx.out.fields([
      ['Subject', r.subject],
      ['Kind', r.kind],
      ['Scanner', r.scanner],
      ['Artifact', r.artifact],
      ['Critical', String(r.critical)],
      ['High', String(r.high)],
      ['Medium', String(r.medium)],
      ['Low', String(r.low)],
      ['Unknown', String(r.unknown)],
      ['Fixable', String(r.fixable)],
      ['Scanned at', isoFromMillis(r.scannedAt)],
      ['Import version', String(r.importVersion)],
      ['Imported at', isoFromMillis(r.importedAt)],
    ]);
  });
}
