// The kubelet's GET /pods (a v1 PodList of the pods bound to this node), reduced to what
// attestation reads, the lookup of a container by id, and SPIRE's k8s selectors.
import { z } from 'zod';
import { FailedPreconditionError, TesseraError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import { validSelectors } from '../unix/selectors.ts';

const containerStatus = z.object({
  name: z.string(),
  image: z.string().optional(),
  imageID: z.string().optional(),
  /** `<runtime>://<id>`; absent until the runtime has created the container. */
  containerID: z.string().optional(),
});

const pod = z.object({
  metadata: z.object({
    name: z.string(),
    namespace: z.string(),
    uid: z.string(),
    labels: z.record(z.string(), z.string()).nullish(),
    ownerReferences: z
      .array(z.object({ kind: z.string(), name: z.string(), uid: z.string() }))
      .nullish(),
  }),
  spec: z
    .object({
      serviceAccountName: z.string().optional(),
      nodeName: z.string().optional(),
    })
    .optional(),
  status: z
    .object({
      containerStatuses: z.array(containerStatus).nullish(),
      initContainerStatuses: z.array(containerStatus).nullish(),
    })
    .optional(),
});

const podListSchema = z.object({ items: z.array(pod).nullish() });

export type Pod = z.output<typeof pod>;
export type ContainerStatus = z.output<typeof containerStatus>;

export function parsePodList(body: Buffer): Pod[] {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new TesseraError('internal', 'k8s: the kubelet pod list is not JSON', { cause: e });
  }
  const r = podListSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new TesseraError(
      'internal',
      `k8s: unexpected kubelet pod list: ${i?.path.join('.')}: ${i?.message}`,
    );
  }
  return r.data.items ?? [];
}

export interface PodContainer {
  readonly pod: Pod;
  readonly status: ContainerStatus;
  readonly init: boolean;
}

/**
 * The pod and container whose status carries `containerId` (the part after `<runtime>://`,
 * compared exactly). Regular and init containers are searched, as in SPIRE; ephemeral (debug)
 * containers are not, so `kubectl debug` does not inherit the pod's identity. When the cgroup
 * named a pod UID, the pod must have it. Two pods claiming one container id is refused.
 */
export function findPodContainer(
  pods: readonly Pod[],
  containerId: string,
  podUid: string | undefined,
): PodContainer | null {
  let found: PodContainer | null = null;
  for (const p of pods) {
    if (podUid !== undefined && p.metadata.uid !== podUid) continue;
    const hit =
      match(p.status?.containerStatuses, containerId, false) ??
      match(p.status?.initContainerStatuses, containerId, true);
    if (!hit) continue;
    if (found && found.pod.metadata.uid !== p.metadata.uid) {
      throw new FailedPreconditionError(
        `k8s: container ${containerId} is claimed by two pods (${found.pod.metadata.namespace}/${found.pod.metadata.name}, ${p.metadata.namespace}/${p.metadata.name})`,
      );
    }
    found = { pod: p, ...hit };
  }
  return found;
}

function match(
  statuses: readonly ContainerStatus[] | null | undefined,
  containerId: string,
  init: boolean,
): { status: ContainerStatus; init: boolean } | null {
  for (const s of statuses ?? []) {
    const sep = s.containerID?.indexOf('://') ?? -1;
    if (sep < 0) continue;
    if (s.containerID?.slice(sep + 3) === containerId) return { status: s, init };
  }
  return null;
}

/** SPIRE's k8s selectors for a container of a pod. */
export function podSelectors(hit: PodContainer): Selector[] {
  const { pod: p, status } = hit;
  const out: Selector[] = [];
  const add = (value: string) => out.push({ type: 'k8s', value });
  add(`ns:${p.metadata.namespace}`);
  if (p.spec?.serviceAccountName) add(`sa:${p.spec.serviceAccountName}`);
  add(`pod-name:${p.metadata.name}`);
  add(`pod-uid:${p.metadata.uid}`);
  if (p.spec?.nodeName) add(`node-name:${p.spec.nodeName}`);
  const labels = p.metadata.labels ?? {};
  for (const k of Object.keys(labels).sort()) add(`pod-label:${k}:${labels[k]}`);
  for (const o of p.metadata.ownerReferences ?? []) {
    add(`pod-owner:${o.kind}:${o.name}`);
    add(`pod-owner-uid:${o.kind}:${o.uid}`);
  }
  add(`container-name:${status.name}`);
  // Both the image as referenced and its resolved digest (SPIRE issue #2026): entries may pin
  // either. Both come from the status (what runs), not the spec (what was asked for).
  for (const image of imageIdentifiers([status])) add(`container-image:${image}`);
  const containers = p.status?.containerStatuses ?? [];
  const inits = p.status?.initContainerStatuses ?? [];
  for (const image of imageIdentifiers(containers)) add(`pod-image:${image}`);
  for (const image of imageIdentifiers(inits)) add(`pod-init-image:${image}`);
  add(`pod-image-count:${containers.length}`);
  add(`pod-init-image-count:${inits.length}`);
  return validSelectors(out);
}

function imageIdentifiers(statuses: readonly ContainerStatus[]): string[] {
  const out = new Set<string>();
  for (const s of statuses) {
    if (s.image) out.add(s.image);
    if (s.imageID) out.add(s.imageID);
  }
  return [...out];
}
