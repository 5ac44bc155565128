// k8s_psat: the agent presents its projected service-account token and the cluster it runs in.
// The server verifies the token with that cluster's verifier (issuer keys or TokenReview),
// checks the service account against the cluster's allow list, and names the agent after the
// node: spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node uid>. Trust on first use: a node uid
// attests once; the node record must be evicted before it attests again, so a stolen or replayed
// token cannot take over a node that is already attested.
import { InvalidArgumentError, PermissionDeniedError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import type { NodeAttestor } from '../node-attestor.ts';
import { parsePsatPayload } from './payload.ts';
import type { PsatIdentity } from './token.ts';

export const K8S_PSAT_TYPE = 'k8s_psat';

export interface PsatCluster {
  /** `namespace:name` of the service accounts whose agents may attest. */
  readonly allowedServiceAccounts: ReadonlySet<string>;
  /** Verifies the token (signature or TokenReview, audience, expiry); throws when it fails. */
  verify(token: string): Promise<PsatIdentity>;
  /** TOFU off: any agent with a valid token for the node uid may attest as it again. */
  readonly allowReattestation?: boolean;
}

/** Agent ID segments must be SPIFFE path characters. */
const SEGMENT_RE = /^[A-Za-z0-9._-]{1,128}$/;

export function createK8sPsatAttestor(clusters: ReadonlyMap<string, PsatCluster>): NodeAttestor {
  if (clusters.size === 0)
    throw new InvalidArgumentError('k8s_psat: clusters: configure at least one cluster');
  return {
    type: K8S_PSAT_TYPE,
    async attest(payload) {
      const { cluster: name, token } = parsePsatPayload(payload);
      const cluster = clusters.get(name);
      if (!cluster)
        throw new PermissionDeniedError(`k8s_psat: cluster "${name}" is not configured`);
      const id = await cluster.verify(token);
      const sa = `${id.namespace}:${id.serviceAccount}`;
      if (!cluster.allowedServiceAccounts.has(sa))
        throw new PermissionDeniedError(
          `k8s_psat: service account "${sa}" is not allowed in cluster "${name}"`,
        );
      if (!SEGMENT_RE.test(id.nodeUid))
        throw new PermissionDeniedError('k8s_psat: token node uid is not a valid ID segment');
      return {
        idSegments: [name, id.nodeUid],
        selectors: selectorsOf(name, id),
        canReattest: cluster.allowReattestation === true,
        trustOnFirstUse: cluster.allowReattestation !== true,
      };
    },
  };
}

function selectorsOf(cluster: string, id: PsatIdentity): Selector[] {
  const s = (value: string): Selector => ({ type: K8S_PSAT_TYPE, value });
  return [
    s(`cluster:${cluster}`),
    s(`agent_ns:${id.namespace}`),
    s(`agent_sa:${id.serviceAccount}`),
    s(`agent_pod_name:${id.podName}`),
    s(`agent_pod_uid:${id.podUid}`),
    s(`agent_node_name:${id.nodeName}`),
    s(`agent_node_uid:${id.nodeUid}`),
  ];
}
