// Kubernetes cgroup layouts, as the kubelet and the CRI runtimes lay them out:
//   cgroupfs:  /kubepods[/burstable|/besteffort]/pod<uid>/<id>
//   systemd:   /kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<u_i_d>.slice/
//              (cri-containerd|crio|docker)-<id>.scope
//   unmapped:  /kubepods-<qos>-pod<u_i_d>.slice:cri-containerd:<id>   (containerd, systemd names)
//   kind:      /kubelet.slice/kubelet-kubepods.slice/..., or /docker/<node>/kubepods/... (v1)
// Seen from an agent in its own cgroup namespace, paths start with `/..` segments and the part
// shared with the agent is cut: what follows starts at any level of this hierarchy, hence the
// optional levels. Every level is anchored, so a cgroup a user creates under /user.slice (or a
// container creates under its own cgroup) with a pod-like name never matches.
import { CGROUPNS_PREFIX } from '../docker/cgroup.ts';

const HEX64 = '[0-9a-f]{64}';
const UID = '[0-9a-f]{8}[-_]?[0-9a-f]{4}[-_]?[0-9a-f]{4}[-_]?[0-9a-f]{4}[-_]?[0-9a-f]{12}';
const QOS = '(?:burstable|besteffort)';

const root =
  `(?:/docker/${HEX64})?` +
  '(?:/kubelet\\.slice/kubelet-kubepods\\.slice|/kubepods\\.slice|/kubepods)?';
const qosLevel = `(?:/(?:kubelet-)?(?:kubepods-)?${QOS}(?:\\.slice)?)?`;
const podLevel = `/(?:kubelet-)?(?:kubepods-)?(?:${QOS}-)?pod(?<poduid>${UID})(?:\\.slice)?`;
const containerLevel =
  `(?:/(?:cri-containerd-|crio-|docker-)?|:(?:cri-containerd|crio|docker):)` +
  `(?<id>${HEX64})(?:\\.scope)?`;

export const defaultK8sMatchers: readonly RegExp[] = [
  new RegExp(`${CGROUPNS_PREFIX}${root}${qosLevel}${podLevel}${containerLevel}$`),
  // A sibling container seen from inside the agent's cgroup namespace, where the runtime's cgroup
  // carries no pod UID (CRI-O under KubeEdge): /../crio-<id>.scope. Only a root-created cgroup
  // can be the agent's sibling. docker-<id> is left out: next to an agent running in Docker, it is
  // a plain Docker container, not a pod.
  new RegExp(`^(?:/\\.\\.)+/(?:cri-containerd|crio)-(?<id>${HEX64})\\.scope$`),
];
