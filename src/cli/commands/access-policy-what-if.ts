// `tessera access-policy what-if --file proposed.yaml [--since 24h]`: the recorded access requests
// of the window replayed against the proposed policies; every decision that would flip, with the
// deciding policy on each side (docs/access.md "Testing a policy and what-if").
import type { Command } from 'commander';
import { parseDuration } from '../../core/duration.ts';
import { AccessPolicyService, type AccessFlip } from '../../client/api/access.ts';
import { readInputText } from '../bounded-read.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { isoFromMillis } from '../output.ts';
import { decisionJson } from './access-policy-test.ts';

/** As the server bounds access documents. */
export const MAX_ACCESS_DOCUMENT_FILE = 1024 * 1024;

interface WhatIfFlags {
  file: string;
  since: string;
}

export function registerAccessPolicyWhatIf(group: Command, io: CliIo): void {
  const cmd = adminCommand(
    group,
    'what-if',
    'replay recorded access requests against proposed policies; list the decisions that would flip',
    io,
  )
    .requiredOption(
      '--file <file>',
      'a YAML access document whose access_policies are proposed ("-" = stdin)',
    )
    .option('--since <duration>', 'replay the requests of this last window (at most 90d)', '24h');
  adminAction<WhatIfFlags>(cmd, io, async ({ opts, client, out }) => {
    const sinceMs = parseDuration(opts.since, '--since');
    const document = await readInputText(opts.file, '--file', MAX_ACCESS_DOCUMENT_FILE);
    const res = await client(AccessPolicyService).whatIfAccess({
      document,
      sinceMs: BigInt(sinceMs),
    });
    if (out.json) {
      out.printJson({
        replayed: res.replayed,
        truncated: res.truncated,
        unreadable: res.unreadable,
        flipCount: res.flipCount,
        allowToDeny: res.allowToDeny,
        denyToAllow: res.denyToAllow,
        flips: res.flips.map(flipJson),
      });
      return;
    }
    if (res.flips.length > 0)
      out.table(
        ['TIME', 'CLIENT', 'SERVER', 'NOW', 'PROPOSED'],
        res.flips.map((f) => [
          isoFromMillis(f.time),
          f.client,
          f.server,
          side(f.before),
          side(f.after),
        ]),
      );
    out.line(
      `${res.replayed} request${res.replayed === 1 ? '' : 's'} replayed: ${res.flipCount} would flip ` +
        `(${res.allowToDeny} allow → deny, ${res.denyToAllow} deny → allow)`,
    );
    if (res.flips.length < res.flipCount)
      out.note(`only the first ${res.flips.length} flips are listed`);
    if (res.truncated)
      out.note(
        'the window holds more requests than one replay reads: the oldest were replayed (shorten --since)',
      );
    if (res.unreadable > 0)
      out.note(`${res.unreadable} recorded requests could not be read and were skipped`);
  });
}

function side(d: AccessFlip['before']): string {
  if (!d) return '-';
  const verdict = d.allowed ? 'allow' : 'deny';
  return d.policy ? `${verdict} (${d.policy})` : `${verdict} (${d.reason})`;
}

function flipJson(f: AccessFlip) {
  return {
    seq: Number(f.seq),
    time: isoFromMillis(f.time),
    client: f.client,
    server: f.server,
    before: f.before ? decisionJson(f.before) : null,
    after: f.after ? decisionJson(f.after) : null,
  };
}
