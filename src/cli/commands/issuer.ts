// `tessera issuer ...`: the external OIDC issuers whose tokens the token exchange accepts,
// managed through the admin API (tessera.v1.StsService; docs/cli.md, docs/token-exchange.md).
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.ts';
import { StsService, type StsIssuer } from '../../client/api/sts.ts';
import { readTextFile } from '../bounded-read.ts';
import { adminAction, adminCommand, collect, type CliIo } from '../context.ts';
import { isoFromMillis, orDash, type Printer } from '../output.ts';
import { need } from './trust-policy.ts';

const MAX_JWKS_FILE = 256 * 1024;

const issuerJson = (i: StsIssuer) => ({
  issuer: i.issuer,
  audiences: i.audiences,
  keySource: i.keySource,
  source: i.source,
  keyIds: i.keyIds,
  createdAt: i.createdAt === 0n ? null : isoFromMillis(i.createdAt),
});

function printIssuer(out: Printer, i: StsIssuer): void {
  if (out.json) return out.printJson(issuerJson(i));
  out.fields([
    ['Issuer', i.issuer],
    ['Audiences', i.audiences.join(', ')],
    ['Key source', i.keySource],
    ['Source', i.source],
    ['Key IDs', i.keyIds.join(', ')],
    ['Created at', i.createdAt === 0n ? '' : isoFromMillis(i.createdAt)],
  ]);
}

export function registerIssuer(program: Command, io: CliIo): void {
  const issuer = program
    .command('issuer')
    .description('external OIDC issuers whose tokens the token exchange accepts');

  const add = adminCommand(issuer, 'add', 'register an issuer', io)
    .alias('create')
    .requiredOption('--issuer <url>', "https URL, equal to the tokens' iss")
    .option(
      '--jwks-file <file>',
      "a JWK Set file: the issuer's keys, stored with it (this or --discovery is required)",
    )
    .option('--discovery', 'fetch keys through {issuer}/.well-known/openid-configuration')
    .option('--audience <aud>', 'accepted token audience, repeatable (required)', collect);
  adminAction<{ issuer: string; jwksFile?: string; discovery?: boolean; audience?: string[] }>(
    add,
    io,
    async ({ opts, client, out }) => {
      if (Boolean(opts.jwksFile) === Boolean(opts.discovery))
        throw new InvalidArgumentError('exactly one of --jwks-file and --discovery is required');
      if (!opts.audience?.length) throw new InvalidArgumentError('--audience is required');
      const jwks = opts.jwksFile
        ? await readTextFile(opts.jwksFile, MAX_JWKS_FILE, '--jwks-file')
        : '';
      const res = await client(StsService).addIssuer({
        issuer: opts.issuer,
        audiences: opts.audience,
        jwks,
        discovery: Boolean(opts.discovery),
      });
      const i = need(res.issuer);
      if (out.json) out.printJson(issuerJson(i));
      else
        out.line(`issuer ${i.issuer} added (${i.keySource}, keys: ${orDash(i.keyIds.join(', '))})`);
    },
  );

  const list = adminCommand(issuer, 'list', 'list issuers (config and API)', io);
  adminAction(list, io, async ({ client, out }) => {
    const res = await client(StsService).listIssuers({});
    if (out.json) out.printJson({ issuers: res.issuers.map(issuerJson) });
    else
      out.table(
        ['ISSUER', 'AUDIENCES', 'KEYS', 'SOURCE'],
        res.issuers.map((i) => [i.issuer, i.audiences.join(','), i.keySource, i.source]),
      );
  });

  const show = adminCommand(issuer, 'show', 'show one issuer', io).requiredOption(
    '--issuer <url>',
    'issuer URL',
  );
  adminAction<{ issuer: string }>(show, io, async ({ opts, client, out }) => {
    printIssuer(out, need((await client(StsService).getIssuer({ issuer: opts.issuer })).issuer));
  });

  const remove = adminCommand(
    issuer,
    'remove',
    'remove an issuer (its trust policies must be deleted first)',
    io,
  )
    .alias('delete')
    .requiredOption('--issuer <url>', 'issuer URL');
  adminAction<{ issuer: string }>(remove, io, async ({ opts, client, out }) => {
    await client(StsService).removeIssuer({ issuer: opts.issuer });
    if (out.json) out.printJson({ removed: opts.issuer });
    else out.line(`issuer ${opts.issuer} removed`);
  });
}
