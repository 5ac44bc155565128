// `tessera access-policy ...`: which client workloads may reach which server workload, with
// which credential (create, list, show, update, delete, import) over the admin socket.
// `test` and `what-if` are registered by access-policy-decide.ts.
import type { Command } from 'commander';
import { AccessPolicyService } from '../../client/api/access.ts';
import { TesseraError } from '../../core/errors.ts';
import { readInputText } from '../bounded-read.ts';
import { registerAccessPolicyDecide } from './access-policy-decide.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import {
  accessPolicyHeaders,
  accessPolicyJson,
  accessPolicyRow,
  nameFrom,
  printOne,
  withNameArg,
} from './access-views.ts';

/** The server refuses documents over 1 MiB; reading stops there too. */
export const MAX_ACCESS_DOCUMENT_BYTES = 1024 * 1024;

interface Flags {
  name: string;
  client?: string;
  server?: string;
  credentialProvider?: string;
  condition?: string;
  deny?: boolean;
}

function withFields(cmd: Command, required: boolean): Command {
  cmd.requiredOption('--name <name>', 'access policy name');
  if (required) {
    cmd
      .requiredOption(
        '--client <pattern>',
        'client SPIFFE ID pattern (exact, spiffe://td, * and **)',
      )
      .requiredOption('--server <name>', 'server workload name');
  } else {
    cmd
      .option('--client <pattern>', 'client SPIFFE ID pattern (exact, spiffe://td, * and **)')
      .option('--server <name>', 'server workload name');
  }
  return cmd
    .option(
      '--credential-provider <name>',
      required
        ? 'credential provider to release from (required unless --deny)'
        : 'credential provider (makes the policy an allow policy)',
    )
    .option('--condition <cel>', 'CEL condition over client, request and now ("" = always)')
    .option('--deny', 'a deny policy: wins over every allow, releases nothing');
}

export function registerAccessPolicy(program: Command, io: CliIo): void {
  const ap = program
    .command('access-policy')
    .description('access policies: which clients may reach which server workloads');

  const create = withFields(adminCommand(ap, 'create', 'create an access policy', io), true);
  adminAction<Flags>(create, io, async (ctx) => {
    const o = ctx.opts;
    const res = await ctx.client(AccessPolicyService).createAccessPolicy({
      accessPolicy: {
        name: o.name,
        client: o.client ?? '',
        server: o.server ?? '',
        credentialProvider: o.credentialProvider ?? '',
        condition: o.condition ?? '',
        deny: o.deny === true,
      },
    });
    printOne(ctx, res.accessPolicy, 'access policy', accessPolicyJson);
  });

  const update = withFields(
    adminCommand(
      ap,
      'update',
      'change an access policy (flags not given keep their value); ends its leases',
      io,
    ),
    false,
  );
  adminAction<Flags>(update, io, async (ctx) => {
    const o = ctx.opts;
    const c = ctx.client(AccessPolicyService);
    const { accessPolicy: cur } = await c.getAccessPolicy({ name: o.name });
    if (!cur) throw new TesseraError('internal', 'the server returned no access policy');
    // --deny makes it a deny policy (no provider); --credential-provider alone an allow policy.
    const deny = o.deny === true || (o.credentialProvider === undefined && cur.deny);
    const res = await c.updateAccessPolicy({
      accessPolicy: {
        name: cur.name,
        client: o.client ?? cur.client,
        server: o.server ?? cur.server,
        credentialProvider: o.credentialProvider ?? (deny ? '' : cur.credentialProvider),
        condition: o.condition ?? cur.condition,
        deny,
      },
    });
    printOne(ctx, res.accessPolicy, 'access policy', accessPolicyJson);
  });

  const list = adminCommand(ap, 'list', 'list access policies', io).option(
    '--server <name>',
    'only the policies for this server workload',
  );
  adminAction<{ server?: string }>(list, io, async ({ client, out, opts }) => {
    const res = await client(AccessPolicyService).listAccessPolicies({ server: opts.server ?? '' });
    if (out.json) out.printJson({ accessPolicies: res.accessPolicies.map(accessPolicyJson) });
    else out.table(accessPolicyHeaders, res.accessPolicies.map(accessPolicyRow));
  });

  const show = withNameArg(adminCommand(ap, 'show', 'show an access policy', io), 'access policy');
  adminAction<{ name?: string }>(show, io, async (ctx) => {
    const name = nameFrom(show, ctx.opts, 'access-policy show NAME');
    const res = await ctx.client(AccessPolicyService).getAccessPolicy({ name });
    printOne(ctx, res.accessPolicy, 'access policy', accessPolicyJson);
  });

  const del = withNameArg(
    adminCommand(ap, 'delete', 'delete an access policy; ends its leases', io),
    'access policy',
  );
  adminAction<{ name?: string }>(del, io, async (ctx) => {
    const name = nameFrom(del, ctx.opts, 'access-policy delete NAME');
    const res = await ctx.client(AccessPolicyService).deleteAccessPolicy({ name });
    if (ctx.out.json)
      ctx.out.printJson({
        ...(res.accessPolicy ? accessPolicyJson(res.accessPolicy) : {}),
        leasesEnded: res.leasesEnded,
      });
    else ctx.out.line(`access policy ${name} deleted (${res.leasesEnded} leases ended)`);
  });

  const imp = adminCommand(
    ap,
    'import',
    'create or replace the server workloads, credential providers and access policies of a YAML document, all or nothing',
    io,
  ).requiredOption('--file <file>', 'the YAML access document ("-" = standard input)');
  adminAction<{ file: string }>(imp, io, async (ctx) => {
    const document = await readInputText(ctx.opts.file, '--file', MAX_ACCESS_DOCUMENT_BYTES);
    const res = await ctx.client(AccessPolicyService).importAccessDocument({ document });
    const counts = {
      serverWorkloads: res.serverWorkloads,
      credentialProviders: res.credentialProviders,
      accessPolicies: res.accessPolicies,
    };
    if (ctx.out.json) ctx.out.printJson(counts);
    else
      ctx.out.line(
        `imported ${counts.serverWorkloads} server workloads, ${counts.credentialProviders} credential providers, ${counts.accessPolicies} access policies`,
      );
  });
  registerAccessPolicyDecide(ap, io);
}
