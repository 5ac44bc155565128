// The node facts conditions read (workload-facts.ts: node.id, node.attestor, node.selectors and
// what derives from them) as one opaque value, sent to the agent on its sync stream
// (sync.proto node_fingerprint): when it changes — the node attested again with other selectors,
// say a cloud tag — the agent re-checks its workloads' entry conditions and drops its cached
// credentials. A digest rather than a stored counter: every server computes the same value from
// the record, and it differs after an eviction and a new attestation with other facts.
import { createHash } from 'node:crypto';
import { formatSelector } from '../../core/selector.ts';
import type { FactsNode } from './workload-facts.ts';

/** 63 bits of sha256 over the node's facts (selectors in any order give the same value); never 0. */
export function nodeFingerprint(node: FactsNode): bigint {
  const selectors = node.selectors.map(formatSelector).sort();
  const text = JSON.stringify([node.spiffeId, node.attestationType ?? '', selectors]);
  const digest = createHash('sha256').update(text).digest();
  const value = digest.readBigUInt64BE(0) & 0x7fff_ffff_ffff_ffffn;
  return value === 0n ? 1n : value;
}
