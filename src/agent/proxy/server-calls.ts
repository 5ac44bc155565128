// The proxy's calls to the server over the agent's mTLS link (release.proto): the server
// workloads it may reach, and the report of credentials served from the cache. A server that
// does not answer is `unavailable`; a refusal keeps its code.
import { ConnectError } from '@connectrpc/connect';
import type { CachedCredentialUse, ServerWorkload } from '../../core/access.ts';
import { TesseraError } from '../../core/errors.ts';
import { serverWorkloadRecordFromWire } from '../../wire/access.ts';
import { cachedUseToWire } from '../../wire/cached-use.ts';
import { errorCodeFromTransport } from '../../wire/connect-codes.ts';
import type { ServerClients } from '../identity/server-link.ts';

interface Link {
  clients(): Pick<ServerClients, 'release'>;
}

const TIMEOUT_MS = 30_000;

export async function fetchServerWorkloads(
  link: Link,
  signal: AbortSignal,
): Promise<{ serverWorkloads: ServerWorkload[]; revision: bigint }> {
  try {
    const r = await link
      .clients()
      .release.listAgentServerWorkloads({}, { signal, timeoutMs: TIMEOUT_MS });
    return {
      serverWorkloads: r.serverWorkloads.map(serverWorkloadRecordFromWire),
      revision: r.accessRevision,
    };
  } catch (e) {
    throw asTesseraError(e, 'listing the server workloads');
  }
}

export async function sendCachedUses(
  link: Link,
  uses: readonly CachedCredentialUse[],
  dropped: number,
  signal: AbortSignal,
): Promise<void> {
  try {
    await link
      .clients()
      .release.reportCachedUses(
        { uses: uses.map(cachedUseToWire), dropped: BigInt(dropped) },
        { signal, timeoutMs: TIMEOUT_MS },
      );
  } catch (e) {
    throw asTesseraError(e, 'reporting cached credential uses');
  }
}

function asTesseraError(e: unknown, what: string): Error {
  if (e instanceof TesseraError) return e;
  const ce = ConnectError.from(e);
  const code = errorCodeFromTransport(ce.code) ?? 'unavailable';
  return new TesseraError(code, `${what}: ${ce.rawMessage}`, { cause: e });
}
