// `tessera cloud env --cloud azure`: what points @azure/identity (ManagedIdentityCredential,
// DefaultAzureCredential) at the agent. Three forms (docs/cloud-credentials.md, "Azure"):
//   - IMDS (default): `AZURE_POD_IDENTITY_AUTHORITY_HOST=http://<agent>`;
//   - App Service (`identityHeader` given, fetched from the agent by fetchIdentityHeader):
//     `IDENTITY_ENDPOINT=http://<agent>/msi/token`, `IDENTITY_HEADER`;
//   - workload identity (`tokenFile`, `tenantId`, `clientId`): `AZURE_FEDERATED_TOKEN_FILE`
//     (a JWT-SVID file the agent keeps fresh), `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`; the SDK
//     calls Entra ID itself.
// `serverWorkload` selects a user-assigned identity: `AZURE_CLIENT_ID=<server workload>`, which
// DefaultAzureCredential sends as `client_id` (the agent serves that server workload).
import { InvalidArgumentError, UnavailableError } from '../../core/errors.ts';
import { NAME_PATTERN } from '../../core/access.ts';
import { agentBaseUrl } from './agent-address.ts';
import { checkEndpointUrl } from './endpoint-url.ts';
import { type CloudEnvInput, type CloudEnvOutput, tokenFileFor } from './env-input.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What the agent answers for the App Service header: base64url of an HMAC-SHA256. */
const IDENTITY_HEADER = /^[A-Za-z0-9_-]{43}$/;

export interface AzureEnvOptions {
  readonly agentAddress: string;
  readonly serverWorkload?: string;
  /** App Service form: the caller's identity header (fetchIdentityHeader). */
  readonly identityHeader?: string;
  /** Workload identity form. */
  readonly tokenFile?: string;
  readonly tenantId?: string;
  readonly clientId?: string;
  readonly authorityHost?: string;
}

export function azureEnv(o: AzureEnvOptions): CloudEnvOutput {
  const base = agentBaseUrl(o.agentAddress);
  if (o.tokenFile !== undefined) {
    if (!o.tenantId || !GUID.test(o.tenantId) || !o.clientId || !GUID.test(o.clientId)) {
      throw new InvalidArgumentError(
        'workload identity needs --tenant-id and --client-id (GUIDs) with the token file',
      );
    }
    // MSAL refuses a non-https authority; a stand-in on loopback still needs https.
    if (o.authorityHost !== undefined) checkEndpointUrl('--authority-host', o.authorityHost, true);
    return {
      env: {
        AZURE_FEDERATED_TOKEN_FILE: o.tokenFile,
        AZURE_TENANT_ID: o.tenantId,
        AZURE_CLIENT_ID: o.clientId,
        ...(o.authorityHost !== undefined && { AZURE_AUTHORITY_HOST: o.authorityHost }),
      },
    };
  }
  const env: Record<string, string> = {};
  if (o.serverWorkload !== undefined) {
    if (!NAME_PATTERN.test(o.serverWorkload)) {
      throw new InvalidArgumentError(
        `--server-workload "${o.serverWorkload.slice(0, 63)}": not a server workload name`,
      );
    }
    env['AZURE_CLIENT_ID'] = o.serverWorkload;
  }
  if (o.identityHeader !== undefined) {
    if (!IDENTITY_HEADER.test(o.identityHeader)) {
      throw new InvalidArgumentError('the agent answered something that is not an identity header');
    }
    return {
      env: { ...env, IDENTITY_ENDPOINT: `${base}/msi/token`, IDENTITY_HEADER: o.identityHeader },
    };
  }
  return { env: { ...env, AZURE_POD_IDENTITY_AUTHORITY_HOST: base } };
}

/** The App Service identity header of the calling process's uid, from the agent. */
export async function fetchIdentityHeader(
  agentAddress: string,
  timeoutMs = 10_000,
): Promise<string> {
  const url = `${agentBaseUrl(agentAddress)}/tessera/azure/identity-header`;
  const res = await fetch(url, {
    headers: { Metadata: 'true' },
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.text()).slice(0, 4096);
  if (!res.ok) {
    throw new UnavailableError(
      `agent ${agentAddress} refused the identity header (HTTP ${res.status}): ${body.replace(/[^\x20-\x7e]/g, '?')}`,
    );
  }
  return body.trim();
}

/**
 * The dispatch's builder (`tessera cloud env --cloud azure`): `--tenant-id`, `--client-id`,
 * `--authority-host`, `--token-file` (or the agent config's token file with audience
 * `api://AzureADTokenExchange`) for workload identity; option `identityHeader` (the dispatch
 * fetches it with fetchIdentityHeader for `--azure-source app-service`); else IMDS.
 */
export function azureCloudEnv(i: CloudEnvInput): CloudEnvOutput {
  const o = i.options;
  const workloadIdentity = o['tenantId'] !== undefined || o['clientId'] !== undefined;
  const tokenFile = workloadIdentity ? tokenFileFor(i, 'api://AzureADTokenExchange') : undefined;
  return azureEnv({
    agentAddress: i.address,
    ...(i.serverWorkload !== '' && { serverWorkload: i.serverWorkload }),
    ...(o['identityHeader'] !== undefined && { identityHeader: o['identityHeader'] }),
    ...(tokenFile !== undefined && { tokenFile }),
    ...(o['tenantId'] !== undefined && { tenantId: o['tenantId'] }),
    ...(o['clientId'] !== undefined && { clientId: o['clientId'] }),
    ...(o['authorityHost'] !== undefined && { authorityHost: o['authorityHost'] }),
  });
}
