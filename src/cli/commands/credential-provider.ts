// `tessera credential-provider ...`: configured credential providers (create, list, show,
// delete) over the admin socket. The config holds settings and secret names, never secret values.
import type { JsonObject } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { CredentialProviderService } from '../../client/api/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { adminAction, adminCommand, type CliIo, collect } from '../context.ts';
import {
  credentialProviderHeaders,
  credentialProviderJson,
  credentialProviderRow,
  nameFrom,
  printOne,
  withNameArg,
} from './access-views.ts';
import { configFromFile, configFromSets } from './provider-config.ts';

interface CreateFlags {
  name: string;
  type: string;
  config?: string;
  set?: string[];
}

export function registerCredentialProvider(program: Command, io: CliIo): void {
  const cp = program
    .command('credential-provider')
    .description('credential providers: where released credentials come from');

  const create = adminCommand(cp, 'create', 'create a credential provider', io)
    .requiredOption('--name <name>', 'credential provider name')
    .requiredOption(
      '--type <type>',
      'static-secret | oauth2-client-credentials | jwt-svid | access-token | signed-jwt | postgres-dynamic',
    )
    .option('--config <file>', 'the config as a YAML or JSON file ("-" = standard input)')
    .option('--set <key=value>', 'one config value (repeatable; dotted keys nest)', collect);
  adminAction<CreateFlags>(create, io, async (ctx) => {
    const o = ctx.opts;
    if (o.config !== undefined && o.set !== undefined)
      throw new InvalidArgumentError('give the config with --config FILE or --set, not both');
    const config =
      o.config !== undefined ? await configFromFile(o.config) : configFromSets(o.set ?? []);
    const res = await ctx.client(CredentialProviderService).createCredentialProvider({
      credentialProvider: { name: o.name, type: o.type, config: config as JsonObject },
    });
    printOne(ctx, res.credentialProvider, 'credential provider', credentialProviderJson);
  });

  const list = adminCommand(cp, 'list', 'list credential providers', io);
  adminAction<object>(list, io, async ({ client, out }) => {
    const res = await client(CredentialProviderService).listCredentialProviders({});
    if (out.json)
      out.printJson({ credentialProviders: res.credentialProviders.map(credentialProviderJson) });
    else out.table(credentialProviderHeaders, res.credentialProviders.map(credentialProviderRow));
  });

  const show = withNameArg(
    adminCommand(cp, 'show', 'show a credential provider and its config', io),
    'credential provider',
  );
  adminAction<{ name?: string }>(show, io, async (ctx) => {
    const name = nameFrom(show, ctx.opts, 'credential-provider show NAME');
    const res = await ctx.client(CredentialProviderService).getCredentialProvider({ name });
    printOne(ctx, res.credentialProvider, 'credential provider', credentialProviderJson);
  });

  const del = withNameArg(
    adminCommand(
      cp,
      'delete',
      'delete a credential provider (refused while policies use it); ends its leases',
      io,
    ),
    'credential provider',
  );
  adminAction<{ name?: string }>(del, io, async (ctx) => {
    const name = nameFrom(del, ctx.opts, 'credential-provider delete NAME');
    const res = await ctx.client(CredentialProviderService).deleteCredentialProvider({ name });
    if (ctx.out.json)
      ctx.out.printJson({
        ...(res.credentialProvider ? credentialProviderJson(res.credentialProvider) : {}),
        leasesEnded: res.leasesEnded,
      });
    else ctx.out.line(`credential provider ${name} deleted (${res.leasesEnded} leases ended)`);
  });
}
