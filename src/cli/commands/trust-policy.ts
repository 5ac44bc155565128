// `tessera trust-policy ...`: the trust policies of the token exchange, managed through the admin
// API (tessera.v1.StsService; issuers are in issuer.ts), and `tessera trust-policy test`, the dry run (docs/cli.md, docs/trust-policies.md). Policies are
// compiled and checked by the server (the CLI may not import the policy engine), so an invalid
// CEL expression or template comes back with the compiler's message.
import type { MessageInitShape } from '@bufbuild/protobuf';
import { type Command, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import {
  StsService,
  type TrustPolicySchema,
  type TestTrustPolicyResponse,
  type TrustPolicy,
} from '../../client/api/sts.ts';
import { readTextFile } from '../bounded-read.ts';
import { adminAction, adminCommand, collect, optionAlias, type CliIo } from '../context.ts';
import { isoFromMillis, type Printer } from '../output.ts';

const MAX_POLICY_FILE = 64 * 1024;
const MAX_TOKEN_FILE = 64 * 1024;
const MAX_CLAIMS_FILE = 64 * 1024;

/** NAME=VALUE pairs → a record; a repeated name is an error. */
function pairs(list: readonly string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list ?? []) {
    const i = p.indexOf('=');
    if (i <= 0)
      throw new InvalidArgumentError(`${what}: expected NAME=VALUE, got "${p.slice(0, 64)}"`);
    const k = p.slice(0, i);
    if (Object.hasOwn(out, k)) throw new InvalidArgumentError(`${what}: "${k}" is repeated`);
    out[k] = p.slice(i + 1);
  }
  return out;
}

// --- views -----------------------------------------------------------------------------------

const policyJson = (p: TrustPolicy) => ({
  name: p.name,
  issuer: p.issuer,
  condition: p.condition,
  attributeMapping: p.attributeMapping,
  spiffeId: p.spiffeId || null,
  accessToken: p.accessTokenAudience
    ? { audience: p.accessTokenAudience, scopes: p.scopes, requireDpop: p.requireDpop }
    : null,
  introspectionClient: p.introspectionClient,
  ttl: p.ttl,
  template: p.template || null,
  source: p.source,
  createdAt: p.createdAt === 0n ? null : isoFromMillis(p.createdAt),
});

const policyOutput = (p: TrustPolicy): string =>
  p.spiffeId
    ? p.spiffeId
    : `access token ${p.accessTokenAudience}${p.scopes.length ? ` [${p.scopes.join(' ')}]` : ''}${p.requireDpop ? ' (DPoP)' : ''}`;

function printPolicy(out: Printer, p: TrustPolicy): void {
  if (out.json) return out.printJson(policyJson(p));
  out.fields([
    ['Name', p.name],
    ['Issuer', p.issuer],
    ['Condition', p.condition],
    ...Object.entries(p.attributeMapping).map(([k, v]) => [`Mapping ${k}`, v] as [string, string]),
    ['Output', policyOutput(p)],
    ['TTL', p.ttl],
    ['Template', p.template],
    ['Source', p.source],
    ['Created at', p.createdAt === 0n ? '' : isoFromMillis(p.createdAt)],
  ]);
}

function printReport(out: Printer, r: TestTrustPolicyResponse): void {
  const attributes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.attributes))
    attributes[k] = v.startsWith('[') ? (JSON.parse(v) as unknown) : v;
  if (out.json) {
    out.printJson({
      decision: r.decision,
      policy: r.policy,
      mode: r.mode,
      failing: r.failing || null,
      reason: r.reason || null,
      attributes,
      spiffeId: r.spiffeId || null,
      accessToken: r.accessTokenAudience
        ? { audience: r.accessTokenAudience, scopes: r.scopes }
        : null,
      ttlSeconds: r.decision === 'allow' ? Number(r.ttlSeconds) : null,
    });
    return;
  }
  const rows: [string, string][] = [
    ['Decision', r.decision],
    ['Policy', r.policy],
    ['Checked', r.mode === 'token' ? 'token (signature, iss, aud, exp verified)' : 'raw claims'],
  ];
  if (r.decision === 'deny') rows.push(['Failing', r.failing], ['Reason', r.reason]);
  for (const [k, v] of Object.entries(r.attributes)) rows.push([`Attribute ${k}`, v]);
  if (r.spiffeId) rows.push(['SPIFFE ID', r.spiffeId]);
  if (r.accessTokenAudience)
    rows.push(['Access token', `${r.accessTokenAudience} [${r.scopes.join(' ')}]`]);
  if (r.decision === 'allow') rows.push(['TTL', `${r.ttlSeconds}s`]);
  out.fields(rows);
}

// --- trust-policy ----------------------------------------------------------------------------

interface PolicyFlags {
  file?: string;
  name?: string;
  issuer?: string;
  condition?: string;
  mapping?: string[];
  spiffeId?: string;
  accessTokenAudience?: string;
  scope?: string[];
  requireDpop?: boolean;
  introspectionClient?: boolean;
  ttl?: string;
  template?: string;
  param?: string[];
}

/** The policy a create (or an inline test) describes: the file's fields, overridden by flags. */
async function policyFromFlags(o: PolicyFlags): Promise<{
  policy: MessageInitShape<typeof TrustPolicySchema>;
  template: string;
  params: Record<string, string>;
}> {
  let doc: Record<string, unknown> = {};
  if (o.file) {
    const text = await readTextFile(o.file, MAX_POLICY_FILE, '--file');
    let parsed: unknown;
    try {
      parsed = parseYaml(text, { maxAliasCount: 10 });
    } catch (e) {
      throw new InvalidArgumentError(`--file: not YAML/JSON: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new InvalidArgumentError('--file: must hold one policy document (a mapping)');
    doc = parsed as Record<string, unknown>;
  }
  const str = (k: string): string => {
    const v = doc[k];
    if (v === undefined) return '';
    if (typeof v !== 'string') throw new InvalidArgumentError(`--file: ${k}: must be a string`);
    return v;
  };
  const known = [
    'name',
    'issuer',
    'condition',
    'attribute_mapping',
    'spiffe_id',
    'access_token',
    'ttl',
    'template',
    'template_params',
    'introspection_client',
  ];
  for (const k of Object.keys(doc))
    if (!known.includes(k))
      throw new InvalidArgumentError(`--file: unknown field "${k.slice(0, 64)}"`);
  const fileMapping = (doc.attribute_mapping ?? {}) as Record<string, unknown>;
  const fileAt = (doc.access_token ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(fileAt))
    if (!['audience', 'scopes', 'require_dpop'].includes(k))
      throw new InvalidArgumentError(`--file: access_token: unknown field "${k.slice(0, 64)}"`);
  if (fileAt.require_dpop !== undefined && typeof fileAt.require_dpop !== 'boolean')
    throw new InvalidArgumentError('--file: access_token.require_dpop: must be true or false');
  const stringMap = (v: unknown, what: string): Record<string, string> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new InvalidArgumentError(`--file: ${what}: must be a mapping`);
    for (const [k, x] of Object.entries(v))
      if (typeof x !== 'string')
        throw new InvalidArgumentError(`--file: ${what}.${k}: must be a string`);
    return v as Record<string, string>;
  };
  const mapping = {
    ...stringMap(fileMapping, 'attribute_mapping'),
    ...pairs(o.mapping, '--mapping'),
  };
  const template = o.template ?? str('template');
  // Without a template the subject is the token's sub unless mapped otherwise.
  if (!template && !('subject' in mapping)) mapping.subject = 'assertion.sub';
  const fileScopes = fileAt.scopes ?? [];
  if (!Array.isArray(fileScopes) || fileScopes.some((s) => typeof s !== 'string'))
    throw new InvalidArgumentError('--file: access_token.scopes: must be a list of strings');
  if (fileAt.audience !== undefined && typeof fileAt.audience !== 'string')
    throw new InvalidArgumentError('--file: access_token.audience: must be a string');
  if (o.spiffeId !== undefined && o.accessTokenAudience !== undefined)
    throw new InvalidArgumentError('give --spiffe-id or --access-token-audience, not both');
  // A flag picks the output kind; otherwise the file's fields go as they are (the server
  // refuses a document with both or neither).
  const spiffeId = o.accessTokenAudience !== undefined ? '' : (o.spiffeId ?? str('spiffe_id'));
  const audience =
    o.spiffeId !== undefined ? '' : (o.accessTokenAudience ?? (fileAt.audience as string) ?? '');
  const scopes = o.scope ?? (fileScopes as string[]);
  if (!audience && scopes.length > 0)
    throw new InvalidArgumentError('--scope applies only with --access-token-audience');
  const requireDpop = o.requireDpop ?? (fileAt.require_dpop as boolean | undefined) ?? false;
  if (doc.introspection_client !== undefined && typeof doc.introspection_client !== 'boolean')
    throw new InvalidArgumentError('--file: introspection_client: must be true or false');
  const introspectionClient =
    o.introspectionClient ?? (doc.introspection_client as boolean | undefined) ?? false;
  if (!audience && introspectionClient)
    throw new InvalidArgumentError(
      '--introspection-client applies only with --access-token-audience',
    );
  if (!audience && requireDpop)
    throw new InvalidArgumentError('--require-dpop applies only with --access-token-audience');
  return {
    policy: {
      name: o.name ?? str('name'),
      issuer: o.issuer ?? str('issuer'),
      condition: o.condition ?? str('condition'),
      attributeMapping: template && !o.mapping?.length && !doc.attribute_mapping ? {} : mapping,
      spiffeId,
      accessTokenAudience: audience,
      scopes: audience ? scopes : [],
      requireDpop: audience ? requireDpop : false,
      introspectionClient: audience ? introspectionClient : false,
      ttl: o.ttl ?? str('ttl'),
    },
    template,
    params: {
      ...(doc.template_params ? stringMap(doc.template_params, 'template_params') : {}),
      ...pairs(o.param, '--param'),
    },
  };
}

const policyFields = (cmd: Command): Command =>
  cmd
    .option(
      '--file <file>',
      'a policy document (YAML or JSON, fields as in docs/trust-policies.md)',
    )
    .option('--name <name>', 'policy name ([a-z0-9-], ≤ 64)')
    .option('--issuer <url>', 'the issuer whose tokens it admits')
    .option('--condition <cel>', 'CEL condition over assertion and attribute')
    .option(
      '--mapping <name=cel>',
      'attribute mapping, repeatable (default subject=assertion.sub)',
      collect,
    )
    .option('--spiffe-id <template>', 'issue JWT-SVIDs for this SPIFFE ID template')
    .option('--access-token-audience <aud>', 'issue RFC 9068 access tokens for this audience')
    .option('--scope <scope>', 'access-token scope, repeatable', collect)
    .option('--require-dpop', 'access tokens only with a DPoP proof (RFC 9449)')
    .option(
      '--introspection-client',
      'its access tokens may call the introspection and revocation endpoints',
    )
    .option('--ttl <duration>', 'issued token lifetime (default 15m)')
    .addOption(
      new Option('--template <name>', 'build the policy from a template').choices([
        'github',
        'gitlab',
        'kubernetes',
      ]),
    )
    .option(
      '--param <name=value>',
      'template parameter, repeatable (e.g. owner=octo-org)',
      collect,
    );

export function registerTrustPolicy(program: Command, io: CliIo): void {
  const tp = program
    .command('trust-policy')
    .description('trust policies of the token exchange (which external tokens get what)');

  const create = policyFields(adminCommand(tp, 'create', 'create a trust policy', io));
  adminAction<PolicyFlags>(create, io, async ({ opts, client, out }) => {
    const { policy, template, params } = await policyFromFlags(opts);
    const res = await client(StsService).createTrustPolicy({
      policy,
      template,
      templateParams: params,
    });
    const p = need(res.policy);
    if (out.json) out.printJson(policyJson(p));
    else out.line(`trust policy ${p.name} created (${p.issuer} → ${policyOutput(p)})`);
  });

  const list = adminCommand(
    tp,
    'list',
    'list trust policies (config and API), in evaluation order',
    io,
  );
  adminAction(list, io, async ({ client, out }) => {
    const res = await client(StsService).listTrustPolicies({});
    if (out.json) out.printJson({ policies: res.policies.map(policyJson) });
    else
      out.table(
        ['NAME', 'ISSUER', 'OUTPUT', 'TTL', 'SOURCE'],
        res.policies.map((p) => [p.name, p.issuer, policyOutput(p), p.ttl, p.source]),
      );
  });

  const show = adminCommand(tp, 'show', 'show one trust policy', io).requiredOption(
    '--name <name>',
    'policy name',
  );
  adminAction<{ name: string }>(show, io, async ({ opts, client, out }) => {
    printPolicy(out, need((await client(StsService).getTrustPolicy({ name: opts.name })).policy));
  });

  const del = adminCommand(tp, 'delete', 'delete a trust policy', io).requiredOption(
    '--name <name>',
    'policy name',
  );
  adminAction<{ name: string }>(del, io, async ({ opts, client, out }) => {
    await client(StsService).deleteTrustPolicy({ name: opts.name });
    if (out.json) out.printJson({ deleted: opts.name });
    else out.line(`trust policy ${opts.name} deleted`);
  });

  const test = adminCommand(
    tp,
    'test',
    'dry run: the decision, the failing predicate and the mapped attributes (nothing is issued)',
    io,
  )
    .option('--name <name>', 'a stored policy by name (this or --policy-file is required)')
    .option('--policy-file <file>', 'an inline policy document instead (not stored)')
    .option(
      '--token <file>',
      'a subject token, verified as the exchange would (this or --claims is required)',
    )
    .option('--claims <file>', 'raw claims (a JSON object), evaluated without signature checks');
  optionAlias(test, '--policy <name>', 'name');
  adminAction<{ name?: string; policyFile?: string; token?: string; claims?: string }>(
    test,
    io,
    async ({ opts, client, out }) => {
      if (Boolean(opts.name) === Boolean(opts.policyFile))
        throw new InvalidArgumentError('exactly one of --name and --policy-file is required');
      if (Boolean(opts.token) === Boolean(opts.claims))
        throw new InvalidArgumentError('exactly one of --token and --claims is required');
      const fromFile = opts.policyFile
        ? await policyFromFlags({ file: opts.policyFile })
        : undefined;
      if (fromFile?.template)
        throw new InvalidArgumentError(
          '--policy-file: a template cannot be tested inline; create it first',
        );
      const inline = fromFile?.policy;
      const res = await client(StsService).testTrustPolicy({
        policyName: opts.name ?? '',
        ...(inline ? { policy: inline } : {}),
        token: opts.token ? (await readTextFile(opts.token, MAX_TOKEN_FILE, '--token')).trim() : '',
        claims: opts.claims ? await readTextFile(opts.claims, MAX_CLAIMS_FILE, '--claims') : '',
      });
      printReport(out, res);
    },
  );
}

export function need<T>(v: T | undefined): T {
  if (v === undefined) throw new TesseraError('internal', 'the server returned an empty answer');
  return v;
}
