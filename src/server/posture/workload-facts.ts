// The facts conditions read about a workload (docs/posture.md "Attributes"): the attributes its
// agent sent, the node record the server keeps of that agent (authoritative: never taken from
// the agent's word), and the posture reports stored for its image digest and binary hash.
//
//   binary.sha256                "sha256:<hex>" ("" unknown)
//   libraries                    list of {path, sha256}
//   kernel.release               string
//   image.digest                 "sha256:<hex>" ("" outside a container)
//   node.id, node.attestor       the agent's SPIFFE ID and node attestor
//   node.selectors               list of "type:value" of the node's attestation
//   node.<key>                   value of a node selector "<attestor>:<key>:<value>" (account,
//                                region, zone, …; the first one per key)
//   node.tags                    map of "<attestor>:tag:<name>:<value>" selectors
//   posture.scanned              false when no report names the image or the binary
//   posture.critical … unknown, posture.fixable   ints (worst of the image's and binary's report)
//   posture.scanner, posture.scanned_at, posture.import_version
import { parseFlatAttributes } from '../../core/attributes.ts';
import { postureFacts, SEVERITIES, type PostureReport } from '../../core/posture.ts';
import { formatSelector, type Selector } from '../../core/selector.ts';

export interface FactsNode {
  readonly spiffeId: string;
  readonly attestationType?: string;
  readonly selectors: readonly Selector[];
}

export interface PostureLookup {
  report(subject: string): PostureReport | undefined;
}

export type WorkloadFacts = Readonly<Record<string, unknown>>;

export function workloadFacts(
  flat: Readonly<Record<string, string>>,
  node: FactsNode | undefined,
  posture: PostureLookup,
): WorkloadFacts {
  const a = parseFlatAttributes(flat);
  const reports = [a.imageDigest, a.binarySha256]
    .filter((s): s is string => s !== undefined)
    .map((s) => posture.report(s))
    .filter((r): r is PostureReport => r !== undefined);
  return {
    binary: { sha256: a.binarySha256 ?? '' },
    libraries: (a.libraries ?? []).map((l) => ({ path: l.path, sha256: l.sha256 })),
    kernel: { release: a.kernelRelease ?? '' },
    image: { digest: a.imageDigest ?? '' },
    node: nodeFacts(node),
    posture: worstOf(reports),
  };
}

function nodeFacts(node: FactsNode | undefined): Record<string, unknown> {
  if (!node) return { id: '', attestor: '', selectors: [], tags: {} };
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const tags: Record<string, string> = {};
  for (const s of node.selectors) {
    const [key, ...rest] = s.value.split(':');
    if (!key || rest.length === 0) continue;
    const value = rest.join(':');
    if (key === 'tag') {
      const [name, ...v] = value.split(':');
      if (name && !Object.hasOwn(tags, name)) tags[name] = v.join(':');
    } else if (!Object.hasOwn(out, key)) {
      out[key] = value;
    }
  }
  return {
    ...out,
    id: node.spiffeId,
    attestor: node.attestationType ?? '',
    selectors: node.selectors.map(formatSelector),
    tags,
  };
}

/** One posture for the workload: the worst count per severity among its reports. */
function worstOf(reports: readonly PostureReport[]): Record<string, unknown> {
  const [first, ...rest] = reports;
  if (!first) return postureFacts(undefined);
  let worst = first;
  for (const r of rest) {
    const counts = { ...worst.counts };
    for (const s of SEVERITIES) counts[s] = Math.max(counts[s], r.counts[s]);
    worst = {
      ...(r.scannedAt > worst.scannedAt ? r : worst),
      counts,
      fixable: Math.max(worst.fixable, r.fixable),
    };
  }
  return postureFacts(worst);
}
