// The set-up most agent black-box tests share: a join token with entries for this process's uid,
// an agent started on it, and bounded waits until the agent serves this process an SVID.
import { WorkloadClient } from '../../src/client/workload/index.ts';
import { entry, type AdminClients } from './admin.ts';
import { startAgent, type AgentProcess } from './agent-process.ts';
import { waitFor } from './ports.ts';
import type { ServerProcess } from './server-process.ts';

/** startAgent's options. */
export type AgentOptions = NonNullable<Parameters<typeof startAgent>[1]>;

export const UID = process.getuid?.() ?? 0;
/** One bounded wait (an agent start, an SVID arriving) on a shared, possibly slow machine. */
export const DEADLINE_MS = 60_000;
/** A test that chains a few bounded waits (start, condition, exit): room for all of them. */
export const CHAINED = { timeout: 5 * DEADLINE_MS };

/** Whether the agent on `socketPath` serves this process an X.509-SVID for `spiffeId`. */
export async function serves(socketPath: string, spiffeId: string): Promise<boolean> {
  const c = new WorkloadClient({ address: `unix://${socketPath}` });
  try {
    const ctx = await c.fetchX509Context({ timeoutMs: 5000 });
    return ctx.svids.some((s) => s.spiffeId === spiffeId);
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** Whether the agent on `socketPath` gives this process a JWT-SVID for `audience`. */
export async function servesJwt(socketPath: string, audience: string): Promise<boolean> {
  const c = new WorkloadClient({ address: `unix://${socketPath}` });
  try {
    const svids = await c.fetchJWTSVIDs({ audience }, { timeoutMs: 5000 });
    return svids.length > 0;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** Entries for this process's uid under the agent `agentSpiffeId`, one per SPIFFE ID. */
export async function entriesForMe(
  admin: AdminClients,
  agentSpiffeId: string,
  spiffeIds: readonly string[],
): Promise<void> {
  await admin.entries.batchCreateEntry({
    entries: spiffeIds.map((id) => entry(id, agentSpiffeId, [`unix:uid:${UID}`])),
  });
}

/** A new join token (and the SPIFFE ID the agent using it will have). */
export async function joinToken(
  admin: AdminClients,
): Promise<{ readonly token: string; readonly agentSpiffeId: string }> {
  const t = await admin.agents.createJoinToken({});
  return { token: t.token, agentSpiffeId: t.agentSpiffeId };
}

/**
 * A join token with an entry for this process per SPIFFE ID, an agent started on `server` with
 * it (and `options`), and — when `spiffeIds` is not empty — a bounded wait until the agent serves
 * the first of them.
 */
export async function startServingAgent(
  server: ServerProcess,
  admin: AdminClients,
  spiffeIds: readonly string[],
  options: Omit<AgentOptions, 'joinToken'> = {},
): Promise<{
  readonly agent: AgentProcess;
  readonly token: string;
  readonly agentSpiffeId: string;
}> {
  const t = await joinToken(admin);
  if (spiffeIds.length > 0) await entriesForMe(admin, t.agentSpiffeId, spiffeIds);
  const agent = await startAgent(server, { ...options, joinToken: t.token });
  if (spiffeIds[0] !== undefined) {
    const first = spiffeIds[0];
    await waitFor(() => serves(agent.socketPath, first), DEADLINE_MS).catch(async () => {
      // The caller never gets this agent to stop: it ends here, its log in the error.
      const log = agent.output().slice(-4000);
      await agent.kill();
      throw new Error(`the agent serves no SVID for ${first} within ${DEADLINE_MS} ms:\n${log}`);
    });
  }
  return { agent, ...t };
}
