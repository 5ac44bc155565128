// The agent's loopback HTTP doors besides the Workload API socket: the credential API over
// HTTP and the cloud metadata endpoints, each started only when configured (compose.ts calls them).
import { type Logger } from 'pino';
import { FailedPreconditionError } from '../../core/errors.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { WorkloadIdentities } from '../cache/workload-identities.ts';
import { type AgentConfig } from '../config/compile.ts';
import type { EntrySync } from '../sync/entry-sync.ts';
import { loadIdentityHeaderKey } from '../cloud/azure/identity-header.ts';
import { cloudEndpoints } from '../cloud/catalog.ts';
import { startCloudListener, type CloudListener } from '../cloud/cloud-listener.ts';
import { ContainerTokens } from '../cloud/aws/container-tokens.ts';
import { tokenRoots } from '../cloud/token-file-paths.ts';
import { TokenFiles } from '../cloud/token-files.ts';
import type { CredentialService } from '../credentials/credential-service.ts';
import { startCredentialHttp, type CredentialHttp } from '../credentials/http-door.ts';
import { parseLoopbackListen } from '../credentials/listen-address.ts';
// For `tessera agent proxy rules` (the CLI imports only this root).
export { transparentRulesFromConfig } from '../proxy/transparent/config-rules.ts';

/** The loopback HTTP credential door, when `credentials.http_listen` is set. */
export async function startHttpDoor(agent: {
  config: AgentConfig;
  attestation: AttestationService;
  credentials: CredentialService;
  log: Logger;
}): Promise<CredentialHttp | null> {
  const listen = agent.config.credentials.http_listen;
  if (listen === '') return null;
  try {
    return await startCredentialHttp({
      ...parseLoopbackListen(listen),
      attestation: agent.attestation,
      credentials: agent.credentials,
      log: agent.log,
    });
  } catch (e) {
    const why = (e as Error).message ?? String(e);
    throw new FailedPreconditionError(
      `credential HTTP API ${listen} (config credentials.http_listen): cannot listen: ${why}`,
      { cause: e },
    );
  }
}

/** The cloud metadata endpoints, when `cloud.listen` is set. */
export async function startCloudDoor(agent: {
  config: AgentConfig;
  attestation: AttestationService;
  credentials: CredentialService;
  identities: WorkloadIdentities;
  log: Logger;
}): Promise<CloudListener | null> {
  const listen = agent.config.cloud.listen;
  if (listen === '') return null;
  const awsContainerTokens = await ContainerTokens.create(
    agent.config.cloud.aws_container_token_files,
    tokenRoots(agent.config),
  ).catch((e: unknown) => {
    throw new FailedPreconditionError(
      `cloud.aws_container_token_files: cannot write: ${(e as Error).message}`,
      { cause: e },
    );
  });
  try {
    return await startCloudListener({
      ...parseLoopbackListen(listen),
      attestation: agent.attestation,
      endpoints: cloudEndpoints({
        cloud: agent.config.cloud,
        azureHeaderKey: loadIdentityHeaderKey(agent.config.data_dir),
        awsContainerTokens,
      }),
      context: { credentials: agent.credentials, identities: agent.identities, log: agent.log },
    });
  } catch (e) {
    const why = (e as Error).message ?? String(e);
    throw new FailedPreconditionError(
      `cloud endpoints ${listen} (config cloud.listen): cannot listen: ${why}`,
      { cause: e },
    );
  }
}

/**
 * The JWT-SVID token files of `cloud.token_files`, minted through the agent's JWT-SVID cache for
 * an entry with the file's SPIFFE ID that this agent serves; null when none are configured.
 */
export function cloudTokenFiles(agent: {
  config: AgentConfig;
  sync: EntrySync;
  identities: WorkloadIdentities;
  log: Logger;
}): TokenFiles | null {
  const files = agent.config.cloud.token_files;
  if (files.length === 0) return null;
  return new TokenFiles({
    files,
    roots: tokenRoots(agent.config),
    log: agent.log,
    mint: async (spiffeId, audience) => {
      const entry = [...agent.sync.entries.values()].find((e) => e.spiffeId === spiffeId);
      if (!entry) throw new FailedPreconditionError(`this agent serves no entry for ${spiffeId}`);
      // The agent itself asks, for the workload the file is for: no process to attest.
      const caller = {
        process: { pid: process.pid, uid: 0, gid: 0 },
        transport: 'unix' as const,
        selectors: [],
        entries: [entry],
      };
      const [svid] = await agent.identities.fetchJwtSvids(caller, [audience], spiffeId);
      if (!svid) throw new FailedPreconditionError(`no JWT-SVID minted for ${spiffeId}`);
      return svid.token;
    },
  });
}
