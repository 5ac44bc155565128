// k8s: the pod and container a process runs in, from its cgroups (container id, pod UID) and the
// kubelet's pod list. Selector names follow SPIRE's k8s attestor. Namespace labels (ns-label) need
// the API server and image signatures need sigstore; neither is here.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { cgroupMatchers, findContainer, readCgroupPaths } from '../docker/cgroup.ts';
import { durationMs } from '../docker/http-get.ts';
import { checkPid } from '../unix/proc-error.ts';
import type { WorkloadAttestor } from '../workload-attestor.ts';
import { defaultK8sMatchers } from './cgroup-matchers.ts';
import { KubeletPods } from './kubelet-client.ts';
import { findPodContainer, podSelectors } from './pod-list.ts';

export const K8S_TYPE = 'k8s';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export const k8sConfigSchema = z.strictObject({
  /**
   * Kubelet base URL. Default https://<node name>:10250. The read-only port
   * (http://127.0.0.1:10255) works too; no token is sent over plain HTTP.
   */
  kubelet_url: z
    .url({ protocol: /^https?$/ })
    .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not carry credentials')
    .refine((u) => !/[?#]/.test(u), 'must not have a query or fragment')
    .optional(),
  /** This node's name; default: the environment variable named by node_name_env. */
  node_name: z.string().min(1).optional(),
  node_name_env: z.string().min(1).default('NODE_NAME'),
  token_path: z.string().min(1).default(`${SA_DIR}/token`),
  /** CA that signs the kubelet's serving certificate. */
  kubelet_ca_path: z.string().min(1).default(`${SA_DIR}/ca.crt`),
  /** Accept any kubelet certificate. Only for clusters whose kubelet certificates are self-signed. */
  skip_kubelet_verification: z.boolean().default(false),
  container_id_cgroup_matchers: cgroupMatchers.optional(),
  /** How long a pod list is reused. */
  pod_list_cache_ttl: durationMs.default(1_000),
  /** Wait before the one re-fetch when a container is not in a freshly fetched list. */
  poll_retry_interval: durationMs.default(250),
  timeout: durationMs.default(5_000),
  max_response_bytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(32 * 1024 * 1024),
});

export type K8sConfig = z.output<typeof k8sConfigSchema>;

export interface K8sAttestorDeps {
  readonly procRoot?: string;
  readonly now?: () => number;
  /** The agent's environment, for node_name_env; the plugin never reads process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function createK8sAttestor(config: K8sConfig, deps: K8sAttestorDeps): WorkloadAttestor {
  const procRoot = deps.procRoot ?? '/proc';
  const now = deps.now ?? Date.now;
  const matchers = config.container_id_cgroup_matchers ?? defaultK8sMatchers;
  const nodeName = config.node_name ?? (deps.env?.[config.node_name_env] || undefined);
  const base = config.kubelet_url ?? (nodeName ? `https://${nodeName}:10250` : undefined);
  if (!base) {
    throw new InvalidArgumentError(
      `k8s: the kubelet address is unknown: set kubelet_url or node_name, or the ${config.node_name_env} environment variable`,
    );
  }
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new InvalidArgumentError(`k8s: node name "${nodeName}" does not make a kubelet URL`);
  }
  const pods = new KubeletPods({
    url,
    tokenPath: config.token_path,
    caPath: config.kubelet_ca_path,
    skipVerification: config.skip_kubelet_verification,
    timeoutMs: config.timeout,
    maxBytes: config.max_response_bytes,
    cacheTtlMs: config.pod_list_cache_ttl,
    now,
  });

  return {
    type: K8S_TYPE,
    async attest(pid, signal) {
      checkPid(pid);
      signal.throwIfAborted();
      const paths = await readCgroupPaths(procRoot, pid, K8S_TYPE, signal);
      const ctr = findContainer(paths, matchers, K8S_TYPE);
      if (!ctr) return [];
      const started = now();
      const first = await pods.get(pods.freshFrom(started), signal);
      let hit = findPodContainer(first.pods, ctr.containerId, ctr.podUid);
      if (!hit) {
        // The pod may be newer than the list. A list cached before this attestation is simply
        // re-fetched; a list fetched for it gets a moment for the kubelet to catch up first.
        if (first.fetchedAt >= started)
          await sleep(config.poll_retry_interval, undefined, { signal });
        const second = await pods.get(Math.max(now(), first.fetchedAt + 1), signal);
        hit = findPodContainer(second.pods, ctr.containerId, ctr.podUid);
      }
      // In a pod cgroup but in no pod the kubelet lists (gone, or not yet reported): no facts.
      return hit ? podSelectors(hit) : [];
    },
  };
}
