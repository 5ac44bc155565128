// `tessera cloud env --cloud gcp`: what points google-auth-library (Application Default
// Credentials) at the agent. Two forms (docs/cloud-credentials.md, "Google Cloud"):
//   - GCE metadata (default): `GCE_METADATA_HOST=<agent>`; the SDK takes the agent for a Compute
//     Engine metadata server and gets the access token of the agent's `cloud.gcp.server_workload`
//     (released under access policies, from the gcp-wif provider).
//   - external account (`audience` given: the workload identity pool provider): a credential
//     config file whose `credential_source` is the agent's identity endpoint — a JWT-SVID of the
//     workload for `https:<audience>` (or a token file the agent keeps fresh) — and
//     `GOOGLE_APPLICATION_CREDENTIALS` naming it; the SDK calls Google STS itself.
// Pure: options in, environment and file contents out; the caller writes the file.
import { InvalidArgumentError } from '../../core/errors.ts';
import { agentBaseUrl } from './agent-address.ts';
import { type CloudEnvInput, type CloudEnvOutput, tokenFileFor } from './env-input.ts';
import { checkEndpointUrl } from './endpoint-url.ts';

export const POOL_PROVIDER =
  /^\/\/iam\.googleapis\.com\/projects\/\d{1,20}\/locations\/global\/workloadIdentityPools\/[a-z0-9-]{4,32}\/providers\/[a-z0-9-]{4,32}$/;
const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const SERVICE_ACCOUNT = /^[a-z0-9-]{6,30}@[a-z0-9.-]{1,200}\.iam\.gserviceaccount\.com$/;

export interface GcpEnvOptions {
  /** The agent's `cloud.listen` (127.0.0.1:PORT). */
  readonly agentAddress: string;
  /** Not expressible through GCE_METADATA_HOST: refused with the way to do it. */
  readonly serverWorkload?: string;
  /** External account: `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`. */
  readonly audience?: string;
  /** External account: where to write the credential config (required with `audience`). */
  readonly configPath?: string;
  /** External account: a token file kept fresh by the agent instead of the URL. */
  readonly tokenFile?: string;
  /** External account: service account to impersonate (generateAccessToken). */
  readonly serviceAccount?: string;
  /** External account: the STS token URL (default Google's). */
  readonly tokenUrl?: string;
  /**
   * External account: `GOOGLE_CLOUD_PROJECT` (else the SDK asks Cloud Resource Manager for the
   * pool's project, which needs a permission the workload rarely has).
   */
  readonly projectId?: string;
}

export function gcpEnv(o: GcpEnvOptions): CloudEnvOutput {
  const base = agentBaseUrl(o.agentAddress);
  if (o.audience === undefined) {
    if (o.serverWorkload !== undefined) {
      throw new InvalidArgumentError(
        `--server-workload: the GCE metadata server's default account is the agent's cloud.gcp.server_workload (GCE_METADATA_HOST carries no path); other server workloads are reached as service account "${o.serverWorkload.slice(0, 63)}" in code (Compute({serviceAccountEmail}))`,
      );
    }
    return { env: { GCE_METADATA_HOST: o.agentAddress } };
  }
  if (!POOL_PROVIDER.test(o.audience)) {
    throw new InvalidArgumentError(
      `--audience "${o.audience.slice(0, 200)}": expected a workload identity pool provider, //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`,
    );
  }
  if (o.configPath === undefined || o.configPath === '') {
    throw new InvalidArgumentError(
      '--config-file: required with --audience (the credential config is written there)',
    );
  }
  if (o.serviceAccount !== undefined && !SERVICE_ACCOUNT.test(o.serviceAccount)) {
    throw new InvalidArgumentError(
      `--service-account "${o.serviceAccount.slice(0, 200)}": expected NAME@PROJECT.iam.gserviceaccount.com`,
    );
  }
  if (o.projectId !== undefined && !PROJECT_ID.test(o.projectId)) {
    throw new InvalidArgumentError(
      `--project "${o.projectId.slice(0, 40)}": expected a project ID (6-30 of a-z, 0-9, -)`,
    );
  }
  if (o.tokenUrl !== undefined) checkEndpointUrl('--token-url', o.tokenUrl);
  const jwtAudience = `https:${o.audience}`;
  const source =
    o.tokenFile !== undefined
      ? { file: o.tokenFile, format: { type: 'text' } }
      : {
          url: `${base}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(jwtAudience)}&format=full`,
          headers: { 'Metadata-Flavor': 'Google' },
          format: { type: 'text' },
        };
  const config = {
    type: 'external_account',
    audience: o.audience,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: o.tokenUrl ?? 'https://sts.googleapis.com/v1/token',
    ...(o.serviceAccount !== undefined && {
      service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${o.serviceAccount}:generateAccessToken`,
    }),
    credential_source: source,
  };
  return {
    env: {
      GOOGLE_APPLICATION_CREDENTIALS: o.configPath,
      ...(o.projectId !== undefined && { GOOGLE_CLOUD_PROJECT: o.projectId }),
    },
    files: [
      {
        path: o.configPath,
        content: `${JSON.stringify(config, null, 2)}\n`,
        flag: '--config-file',
      },
    ],
  };
}

/**
 * The dispatch's builder (`tessera cloud env --cloud gcp`): flags `--audience`, `--config-file`,
 * `--project`, `--service-account`, `--token-url`, `--token-file`; a token file of the agent
 * config (cloud.token_files, audience `https:<audience>`) is used when there is exactly one.
 */
export function gcpCloudEnv(i: CloudEnvInput): CloudEnvOutput {
  const o = i.options;
  const audience = o['audience'];
  const tokenFile = audience === undefined ? undefined : tokenFileFor(i, `https:${audience}`, true);
  return gcpEnv({
    agentAddress: i.address,
    ...(i.serverWorkload !== '' && { serverWorkload: i.serverWorkload }),
    ...(audience !== undefined && { audience }),
    ...(o['configFile'] !== undefined && { configPath: o['configFile'] }),
    ...(o['project'] !== undefined && { projectId: o['project'] }),
    ...(o['serviceAccount'] !== undefined && { serviceAccount: o['serviceAccount'] }),
    ...(o['tokenUrl'] !== undefined && { tokenUrl: o['tokenUrl'] }),
    ...(tokenFile !== undefined && { tokenFile }),
  });
}
