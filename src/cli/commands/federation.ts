// `tessera federation ...`: SPIFFE federation relationships (create, list, show, update, delete,
// refresh) over the admin socket. See docs/federation.md.
import { type Command, Option } from 'commander';
import { readInputText } from '../bounded-read.ts';
import { TesseraError, UnavailableError } from '../../core/errors.ts';
import { type FederationRelationship, FederationService } from '../../client/api/federation.ts';
import { adminAction, adminCommand, type AdminContext, type CliIo } from '../context.ts';
import { bundleJson } from '../views.ts';
import {
  relationshipFields,
  relationshipHeaders,
  relationshipJson,
  relationshipRow,
} from './federation-views.ts';

/** Bundle files are bounded like the server bounds bundles (1 MiB), plus room for PEM framing. */
export const MAX_BUNDLE_FILE_BYTES = 1024 * 1024;

interface SpecFlags {
  trustDomain: string;
  bundleEndpointUrl?: string;
  profile?: 'https_web' | 'https_spiffe';
  endpointSpiffeId?: string;
  trustBundle?: string;
}

const profileOption = () =>
  new Option('--profile <profile>', 'bundle endpoint profile').choices([
    'https_web',
    'https_spiffe',
  ]);

export function registerFederation(program: Command, io: CliIo): void {
  const fed = program
    .command('federation')
    .description('SPIFFE federation relationships with other trust domains');
  registerCreate(fed, io);
  registerUpdate(fed, io);
  registerSimple(fed, io);
}

function withSpecOptions(cmd: Command, required: boolean): Command {
  cmd
    .requiredOption('--trust-domain <td>', 'the foreign trust domain')
    .option('--endpoint-spiffe-id <id>', 'https_spiffe: the SPIFFE ID the endpoint presents')
    .option(
      '--trust-bundle <file>',
      'initial bundle of the trust domain (SPIFFE bundle JSON or PEM); needed for https_spiffe',
    );
  if (required) {
    cmd
      .requiredOption('--bundle-endpoint-url <url>', 'https URL of the bundle endpoint')
      .addOption(profileOption().makeOptionMandatory());
  } else {
    cmd
      .option('--bundle-endpoint-url <url>', 'https URL of the bundle endpoint')
      .addOption(profileOption());
  }
  return cmd;
}

function registerCreate(fed: Command, io: CliIo): void {
  const cmd = withSpecOptions(
    adminCommand(fed, 'create', 'create a federation relationship', io),
    true,
  );
  adminAction<SpecFlags>(cmd, io, async (ctx) => {
    const o = ctx.opts;
    const res = await ctx.client(FederationService).createFederationRelationship({
      relationship: {
        trustDomain: o.trustDomain,
        bundleEndpointUrl: o.bundleEndpointUrl ?? '',
        profile: o.profile ?? '',
        endpointSpiffeId: o.endpointSpiffeId ?? '',
        trustBundle: o.trustBundle ? await readBundleFile(o.trustBundle, '--trust-bundle') : '',
      },
    });
    printRelationship(ctx, res.relationship);
  });
}

function registerUpdate(fed: Command, io: CliIo): void {
  const cmd = withSpecOptions(
    adminCommand(
      fed,
      'update',
      'change a federation relationship (flags not given keep their value)',
      io,
    ),
    false,
  );
  adminAction<SpecFlags>(cmd, io, async (ctx) => {
    const o = ctx.opts;
    const c = ctx.client(FederationService);
    const { relationship: cur } = await c.getFederationRelationship({
      trustDomain: o.trustDomain,
    });
    if (!cur) throw new TesseraError('internal', 'the server returned no relationship');
    const profile = o.profile ?? cur.profile;
    // Switching to https_web drops the endpoint SPIFFE ID, which only https_spiffe uses.
    const endpointSpiffeId =
      o.endpointSpiffeId ?? (profile === 'https_web' ? '' : cur.endpointSpiffeId);
    const res = await c.updateFederationRelationship({
      relationship: {
        trustDomain: cur.trustDomain,
        bundleEndpointUrl: o.bundleEndpointUrl ?? cur.bundleEndpointUrl,
        profile,
        endpointSpiffeId,
        trustBundle: o.trustBundle ? await readBundleFile(o.trustBundle, '--trust-bundle') : '',
      },
    });
    printRelationship(ctx, res.relationship);
  });
}

function registerSimple(fed: Command, io: CliIo): void {
  const list = adminCommand(fed, 'list', 'list federation relationships', io);
  adminAction<object>(list, io, async ({ client, out }) => {
    const res = await client(FederationService).listFederationRelationships({});
    if (out.json) out.printJson({ relationships: res.relationships.map(relationshipJson) });
    else out.table(relationshipHeaders, res.relationships.map(relationshipRow));
  });

  const show = adminCommand(
    fed,
    'show',
    'show a federation relationship and its fetch status',
    io,
  ).requiredOption('--trust-domain <td>', 'the foreign trust domain');
  adminAction<{ trustDomain: string }>(show, io, async (ctx) => {
    const res = await ctx
      .client(FederationService)
      .getFederationRelationship({ trustDomain: ctx.opts.trustDomain });
    printRelationship(ctx, res.relationship);
  });

  const del = adminCommand(
    fed,
    'delete',
    "delete a federation relationship (the trust domain's bundle stays: `bundle delete`)",
    io,
  ).requiredOption('--trust-domain <td>', 'the foreign trust domain');
  adminAction<{ trustDomain: string }>(del, io, async ({ opts, client, out }) => {
    const res = await client(FederationService).deleteFederationRelationship({
      trustDomain: opts.trustDomain,
    });
    const r = res.relationship;
    if (out.json) out.printJson(r ? relationshipJson(r) : {});
    else out.line(`federation relationship with ${r?.trustDomain ?? opts.trustDomain} deleted`);
  });

  const refresh = adminCommand(
    fed,
    'refresh',
    'fetch the bundle now; exits 6 when the fetch fails',
    io,
  ).requiredOption('--trust-domain <td>', 'the foreign trust domain');
  adminAction<{ trustDomain: string }>(refresh, io, async ({ opts, client, out }) => {
    const res = await client(FederationService).refreshFederationRelationship({
      trustDomain: opts.trustDomain,
    });
    if (out.json) {
      out.printJson({
        ok: res.ok,
        error: res.error,
        updated: res.updated,
        ignoredLowerSequence: res.ignoredLowerSequence,
        bundle: res.bundle ? bundleJson(res.bundle) : null,
        relationship: res.relationship ? relationshipJson(res.relationship) : null,
      });
    } else if (res.ok) {
      const seq = res.bundle ? Number(res.bundle.sequence) : 0;
      out.line(
        res.ignoredLowerSequence
          ? `bundle of ${opts.trustDomain} ignored: its sequence is lower than the stored ${seq}`
          : res.updated
            ? `bundle of ${opts.trustDomain} updated (sequence ${seq})`
            : `bundle of ${opts.trustDomain} unchanged (sequence ${seq})`,
      );
    }
    if (!res.ok)
      throw new UnavailableError(`fetching the bundle of ${opts.trustDomain} failed: ${res.error}`);
  });
}

function printRelationship(ctx: AdminContext<object>, r: FederationRelationship | undefined): void {
  if (!r) throw new TesseraError('internal', 'the server returned no relationship');
  if (ctx.out.json) ctx.out.printJson(relationshipJson(r));
  else ctx.out.fields(relationshipFields(r));
}

/** Reads a bundle file (bounded); `-` reads standard input. */
export const readBundleFile = (file: string, flag: string): Promise<string> =>
  readInputText(file, flag, MAX_BUNDLE_FILE_BYTES);
