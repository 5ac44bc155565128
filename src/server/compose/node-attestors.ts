// Wiring of the node attestors' server halves (one map, shared by attestation and the refresh
// tasks) and of the refresh of attested nodes' platform attributes (attestation/node-refresh.ts):
// one task per attestor that has a refresher, at the attestor's configured interval.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { AwsSigningCredentials } from '../../crypto/aws-sigv4/sign-request.ts';
import { createServerNodeAttestors } from '../../plugins/node-attestors/catalog.ts';
import type { NodeAttestor } from '../../plugins/node-attestors/node-attestor.ts';
import type { Store } from '../../store/types.ts';
import { NodeRefresh } from '../attestation/node-refresh.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { ServerConfig } from './config/compile.ts';
import type { Task } from './tasks.ts';

export function buildNodeAttestors(
  config: ServerConfig,
  d: { store: Store; clock: Clock },
): Map<string, NodeAttestor> {
  return createServerNodeAttestors(config.node_attestors, {
    now: () => d.clock.now(),
    joinTokens: { consume: (hash) => d.store.joinTokens.consume(hash, d.clock.now()) },
    awsCredentials: awsCredentialsFromEnv(process.env),
  });
}

export function nodeRefreshTasks(
  attestors: ReadonlyMap<string, NodeAttestor>,
  d: { store: Store; auditor: Auditor; clock: Clock; log: Logger },
): Task[] {
  return [...attestors.values()].flatMap((a) => {
    if (!a.refresher) return [];
    const refresh = new NodeRefresh({
      ...d,
      type: a.type,
      refresher: a.refresher,
      warn: (fields, msg) => d.log.warn({ attestor: a.type, ...fields }, msg),
    });
    return [
      {
        name: `node-refresh:${a.type}`,
        everyMs: a.refresher.everyMs,
        run: async () => {
          const r = await refresh.run();
          if (r.changed > 0 || r.failed > 0)
            d.log.info({ attestor: a.type, ...r }, 'node attributes refreshed');
        },
      },
    ];
  });
}

/** The standard AWS environment variables (as the AWS SDKs read them), or null when unset. */
function awsCredentialsFromEnv(env: NodeJS.ProcessEnv): AwsSigningCredentials | null {
  const accessKeyId = env.AWS_ACCESS_KEY_ID ?? '';
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY ?? '';
  if (accessKeyId === '' || secretAccessKey === '') return null;
  return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN ?? '' };
}
