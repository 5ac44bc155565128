// `tessera cloud ...`: pointing unmodified cloud SDKs at the agent (docs/cloud-credentials.md).
//   cloud env --cloud aws|gcp|azure [--server-workload NAME]   the variables to export (and the
//       files they name, written first)
//   cloud aws credential-process --role NAME                    AWS credential_process output
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { NAME_PATTERN } from '../../core/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { CredentialDenied } from '../../client/workload/index.ts';
import { readTextFile } from '../bounded-read.ts';
import { cloudEnvBuilders } from '../cloud-env/builders.ts';
import { agentBaseUrl } from '../cloud-env/agent-address.ts';
import { fetchIdentityHeader } from '../cloud-env/azure.ts';
import type { CloudEnvInput } from '../cloud-env/env-input.ts';
import { writeEnvFiles } from '../cloud-env/write-files.ts';
import type { CliIo } from '../context.ts';
import { CliExit } from '../exit-codes.ts';
import { outputFormats, Printer, type OutputFormat } from '../output.ts';
import { WORKLOAD_CALL_TIMEOUT_MS, workloadAction, workloadCommand } from './workload-common.ts';

const MAX_AGENT_CONFIG_BYTES = 1024 * 1024;

interface EnvOpts {
  cloud: string;
  serverWorkload?: string;
  cloudAddress?: string;
  agentConfig?: string;
  tokenFile?: string;
  roleArn?: string;
  audience?: string;
  configFile?: string;
  project?: string;
  serviceAccount?: string;
  tokenUrl?: string;
  tenantId?: string;
  clientId?: string;
  authorityHost?: string;
  azureSource: 'imds' | 'app-service';
  output: OutputFormat;
}

/** The per-cloud flags of `cloud env` and the clouds they apply to (a typo is an error). */
const CLOUD_FLAGS = {
  roleArn: ['--role-arn <arn>', 'aws', 'web identity: the SDK assumes this role with a token file'],
  audience: [
    '--audience <provider>',
    'gcp',
    'external account: the workload identity pool provider (//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q)',
  ],
  configFile: [
    '--config-file <path>',
    'gcp',
    'external account: where to write the credential config (0600)',
  ],
  project: ['--project <id>', 'gcp', 'external account: GOOGLE_CLOUD_PROJECT'],
  serviceAccount: [
    '--service-account <email>',
    'gcp',
    'external account: the service account to impersonate',
  ],
  tokenUrl: ['--token-url <url>', 'gcp', "external account: the STS token URL (default Google's)"],
  tenantId: ['--tenant-id <guid>', 'azure', 'workload identity: the Entra tenant'],
  clientId: ['--client-id <guid>', 'azure', 'workload identity: the app (client) ID'],
  authorityHost: [
    '--authority-host <url>',
    'azure',
    'workload identity: AZURE_AUTHORITY_HOST (https)',
  ],
} as const satisfies Record<string, readonly [string, string, string]>;

export function registerCloud(program: Command, io: CliIo): void {
  const cloud = program
    .command('cloud')
    .description('point unmodified cloud SDKs (AWS, Google Cloud, Azure) at the agent');
  const env = cloud
    .command('env')
    .description(
      "print the environment variables that point this process's cloud SDK at the agent (files they name are written first, 0600)",
    )
    .requiredOption('--cloud <cloud>', `the cloud: ${Object.keys(cloudEnvBuilders).join(', ')}`)
    .option('--server-workload <name>', 'the server workload to use (default: the granted one)')
    .option('--cloud-address <host:port>', "the agent's cloud endpoints (its cloud.listen)")
    .option(
      '--agent-config <file>',
      "read cloud.listen and the token files from the agent's config",
    )
    .option('--token-file <path>', 'the token file to name (default: from the agent config)');
  for (const [flags, c, what] of Object.values(CLOUD_FLAGS)) env.option(flags, `${c}: ${what}`);
  env
    .addOption(
      new Option('--azure-source <source>', 'azure: IMDS or App Service managed identity')
        .choices(['imds', 'app-service'])
        .default('imds'),
    )
    .addOption(
      new Option('--output <format>', 'output format: shell exports or json')
        .choices(outputFormats)
        .default('table'),
    );
  env.action(async () => {
    const opts = env.opts<EnvOpts>();
    const builder = Object.hasOwn(cloudEnvBuilders, opts.cloud)
      ? cloudEnvBuilders[opts.cloud]
      : undefined;
    if (!builder) {
      throw new InvalidArgumentError(
        `--cloud: "${opts.cloud.slice(0, 32)}" is not one of ${Object.keys(cloudEnvBuilders).join(', ')}`,
      );
    }
    const sw = opts.serverWorkload ?? '';
    if (sw !== '' && (!NAME_PATTERN.test(sw) || sw.length > 63)) {
      throw new InvalidArgumentError(
        `--server-workload: "${sw.slice(0, 64)}" is not a server workload name`,
      );
    }
    const input = await envInput(opts, sw);
    const out = builder(input);
    // The files first: a variable naming a file that could not be written is never printed.
    await writeEnvFiles(out.files ?? [], input.uid);
    const printer = new Printer(io.stdout, io.stderr, opts.output);
    if (printer.json) {
      printer.printJson(out.env);
      return;
    }
    for (const [k, v] of Object.entries(out.env)) io.stdout.write(`export ${k}=${shellQuote(v)}\n`);
  });

  const aws = cloud.command('aws').description('AWS helpers');
  const cp = workloadCommand(
    aws,
    'credential-process',
    'print AWS credentials for a server workload in credential_process format',
    io,
  ).requiredOption('--role <name>', 'the server workload (protocol aws)');
  workloadAction<{ role: string }>(cp, io, async ({ opts, client }) => {
    try {
      const c = await client.getCredential(
        { serverWorkload: opts.role },
        { timeoutMs: WORKLOAD_CALL_TIMEOUT_MS },
      );
      if (c.value.kind !== 'aws' || c.expiresAt === null) {
        throw new CliExit(
          'failed_precondition',
          `server workload "${opts.role}" does not release AWS credentials`,
        );
      }
      io.stdout.write(
        `${JSON.stringify({
          Version: 1,
          AccessKeyId: c.value.accessKeyId,
          SecretAccessKey: c.value.secretAccessKey,
          SessionToken: c.value.sessionToken,
          Expiration: new Date(c.expiresAt).toISOString(),
        })}\n`,
      );
    } catch (e) {
      if (e instanceof CredentialDenied) throw new CliExit('permission_denied', e.message);
      throw e;
    }
  });
}

/** Flags and, with --agent-config, the agent's cloud settings. */
async function envInput(opts: EnvOpts, serverWorkload: string): Promise<CloudEnvInput> {
  const options: Record<string, string | undefined> = { tokenFile: opts.tokenFile };
  for (const [key, [flags, c]] of Object.entries(CLOUD_FLAGS)) {
    const v = opts[key as keyof typeof CLOUD_FLAGS];
    if (v === undefined) continue;
    if (c !== opts.cloud) {
      throw new InvalidArgumentError(`${flags.split(' ')[0]}: applies to --cloud ${c} only`);
    }
    options[key] = v;
  }
  if (opts.azureSource !== 'imds' && opts.cloud !== 'azure') {
    throw new InvalidArgumentError('--azure-source: applies to --cloud azure only');
  }
  if (options['configFile'] !== undefined) options['configFile'] = resolve(options['configFile']);
  if (options['tokenFile'] !== undefined) options['tokenFile'] = resolve(options['tokenFile']);
  const agent = opts.agentConfig ? await readAgentCloud(opts.agentConfig) : undefined;
  const address = opts.cloudAddress ?? agent?.listen ?? '';
  if (address === '') {
    throw new InvalidArgumentError(
      "the agent's cloud address is unknown: pass --cloud-address HOST:PORT or --agent-config FILE (with cloud.listen)",
    );
  }
  agentBaseUrl(address);
  if (opts.azureSource === 'app-service') {
    // Asked as this process: the header is this uid's own (the agent attests the caller).
    options['identityHeader'] = await fetchIdentityHeader(address);
  }
  return {
    address,
    serverWorkload,
    uid: process.getuid?.() ?? 0,
    tokenFiles: agent?.tokenFiles ?? [],
    awsContainerTokenFiles: agent?.awsContainerTokenFiles ?? [],
    options,
  };
}

type AgentCloud = {
  listen: string;
  tokenFiles: CloudEnvInput['tokenFiles'];
  awsContainerTokenFiles: CloudEnvInput['awsContainerTokenFiles'];
};

async function readAgentCloud(file: string): Promise<AgentCloud> {
  const text = await readTextFile(file, MAX_AGENT_CONFIG_BYTES, '--agent-config');
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new InvalidArgumentError(
      `--agent-config: ${file}: invalid YAML: ${(e as Error).message}`,
    );
  }
  const cloud = (doc as { cloud?: unknown } | null)?.cloud;
  const c = (cloud && typeof cloud === 'object' ? cloud : {}) as Record<string, unknown>;
  const list = (key: string) => {
    const v = c[key];
    if (v === undefined) return [];
    if (!Array.isArray(v))
      throw new InvalidArgumentError(`--agent-config: cloud.${key}: not a list`);
    return v.map((f: unknown, i) => {
      const o = (f ?? {}) as Record<string, unknown>;
      if (typeof o['path'] !== 'string' || typeof o['uid'] !== 'number') {
        throw new InvalidArgumentError(`--agent-config: cloud.${key}.${i}: needs path and uid`);
      }
      return {
        path: o['path'],
        uid: o['uid'],
        spiffe_id: String(o['spiffe_id'] ?? ''),
        audience: String(o['audience'] ?? ''),
      };
    });
  };
  return {
    listen: typeof c['listen'] === 'string' ? c['listen'] : '',
    tokenFiles: list('token_files'),
    awsContainerTokenFiles: list('aws_container_token_files'),
  };
}

/** A value for a POSIX shell, single-quoted. */
export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}
