// `tessera authority ...`: forced rotation of the X.509 CA and JWT signing keys, in SPIRE's order:
// prepare → activate → taint → revoke.
import { type Command, Option } from 'commander';
import { TesseraError } from '../../core/errors.ts';
import { AuthorityService } from '../../client/api/authority.ts';
import type { AuthorityInfo } from '../../client/api/authority.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import type { Printer } from '../output.ts';
import { authorityHeaders, authorityJson, authorityRow } from '../views.ts';

type Kind = 'x509' | 'jwt';
const kindOption = (): Option =>
  new Option('--kind <kind>', 'authority kind').choices(['x509', 'jwt']);

const steps = {
  prepare: { description: 'prepare the next authority', idHelp: '' },
  activate: {
    description: 'activate a prepared authority',
    idHelp: 'prepared authority ID (default: the prepared one)',
  },
  taint: {
    description: 'taint an old authority so agents re-issue',
    idHelp: 'old authority ID (default: the old one)',
  },
  revoke: {
    description: 'remove a tainted authority from the bundle',
    idHelp: 'tainted authority ID (default: the tainted one)',
  },
} as const;

export function registerAuthority(program: Command, io: CliIo): void {
  const authority = program
    .command('authority')
    .description('manage signing authorities (X.509 CA, JWT keys)');
  const show = adminCommand(authority, 'show', 'list authorities', io).addOption(kindOption());
  adminAction<{ kind?: Kind }>(show, io, async ({ opts, client, out }) => {
    const res = await client(AuthorityService).getAuthorities({ kind: opts.kind ?? '' });
    if (out.json) out.printJson({ authorities: res.authorities.map(authorityJson) });
    else out.table(authorityHeaders, res.authorities.map(authorityRow));
  });
  for (const [name, s] of Object.entries(steps) as [
    keyof typeof steps,
    (typeof steps)[keyof typeof steps],
  ][]) {
    const cmd = adminCommand(authority, name, s.description, io).addOption(
      kindOption().makeOptionMandatory(),
    );
    if (s.idHelp) cmd.option('--id <id>', s.idHelp);
    adminAction<{ kind: Kind; id?: string }>(cmd, io, async ({ opts, client, out }) => {
      const c = client(AuthorityService);
      const req = { kind: opts.kind, id: opts.id ?? '' };
      const res =
        name === 'prepare'
          ? await c.prepareAuthority({ kind: opts.kind })
          : name === 'activate'
            ? await c.activateAuthority(req)
            : name === 'taint'
              ? await c.taintAuthority(req)
              : await c.revokeAuthority(req);
      printChanged(out, name, res.authority);
    });
  }
}

const pastTense: Record<keyof typeof steps, string> = {
  prepare: 'prepared',
  activate: 'activated',
  taint: 'tainted',
  revoke: 'revoked: removed from the bundle',
};

function printChanged(out: Printer, step: keyof typeof steps, a: AuthorityInfo | undefined): void {
  if (!a) throw new TesseraError('internal', 'the server returned no authority');
  if (out.json) out.printJson(authorityJson(a));
  else
    out.line(
      `${a.kind} authority ${a.id} ${pastTense[step]} (status ${a.status}${a.tainted ? ', tainted' : ''})`,
    );
}
