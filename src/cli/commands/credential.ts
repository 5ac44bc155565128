// `tessera credential get`: a credential for a server workload from the agent's credential API
// (tessera.access.v1.Credentials/GetCredential on the Workload API socket), as this process — the
// agent attests the caller and the server decides. The value is printed: it is this workload's
// own credential. A denial prints why (reason, deciding policy, failed condition) and exits 5
// (permission denied).
import type { Command } from 'commander';
import { CredentialDenied, type WorkloadCredential } from '../../client/workload/index.ts';
import type { CliIo } from '../context.ts';
import { CliExit } from '../exit-codes.ts';
import { WORKLOAD_CALL_TIMEOUT_MS, workloadAction, workloadCommand } from './workload-common.ts';

export function registerCredential(program: Command, io: CliIo): void {
  const credential = program
    .command('credential')
    .description("this process's credentials for server workloads, from the agent");
  const get = workloadCommand(
    credential,
    'get',
    'get a credential for a server workload as this process',
    io,
  )
    .requiredOption('--server <name>', 'the server workload')
    .option('--spiffe-id <id>', 'ask as this SPIFFE ID (default: the default identity)');
  workloadAction<{ server: string; spiffeId?: string }>(get, io, async ({ opts, client, out }) => {
    let c: WorkloadCredential;
    try {
      c = await client.getCredential(
        { serverWorkload: opts.server, ...(opts.spiffeId ? { spiffeId: opts.spiffeId } : {}) },
        { timeoutMs: WORKLOAD_CALL_TIMEOUT_MS },
      );
    } catch (e) {
      if (!(e instanceof CredentialDenied)) throw e;
      if (out.json) {
        out.printJson({
          denied: true,
          serverWorkload: opts.server,
          reason: e.reason,
          policy: e.policy,
          failedCondition: e.failedCondition,
          correlationId: e.correlationId,
          message: e.message,
        });
      }
      throw new CliExit('permission_denied', e.message);
    }
    const json = credentialJson(c);
    if (out.json) {
      out.printJson(json);
      return;
    }
    out.fields([
      ['SPIFFE ID', c.spiffeId],
      ['server workload', c.serverWorkload],
      ...valueFields(c),
      ['expires at', json.expiresAt ?? 'never'],
      ['present as', c.present],
      ['lease', c.leaseId],
      ['correlation id', c.correlationId],
    ]);
  });
}

function valueFields(c: WorkloadCredential): [string, string][] {
  const v = c.value;
  switch (v.kind) {
    case 'token':
      return [['token', v.token]];
    case 'password':
      return [
        ['username', v.username],
        ['password', v.password],
      ];
    case 'aws':
      return [
        ['access key id', v.accessKeyId],
        ['secret access key', v.secretAccessKey],
        ['session token', v.sessionToken],
      ];
  }
}

/** The stable JSON shape (camelCase, ISO-8601 times). */
function credentialJson(c: WorkloadCredential) {
  const v = c.value;
  return {
    spiffeId: c.spiffeId,
    serverWorkload: c.serverWorkload,
    ...(v.kind === 'token'
      ? { token: v.token }
      : v.kind === 'password'
        ? { username: v.username, password: v.password }
        : {
            aws: {
              accessKeyId: v.accessKeyId,
              secretAccessKey: v.secretAccessKey,
              sessionToken: v.sessionToken,
            },
          }),
    expiresAt: c.expiresAt === null ? null : new Date(c.expiresAt).toISOString(),
    present: c.present,
    leaseId: c.leaseId,
    correlationId: c.correlationId,
  };
}
