// Which entry an agent's workload was attested as: one the agent is authorized for (the rule SVID
// signing uses) whose selectors are all among the attested ones. Shared by the release and the
// report of cached uses: an agent speaks only for workloads it serves.
import type { Entry } from '../../core/entry.ts';
import { type Selector, formatSelector } from '../../core/selector.ts';
import type { AuthorizedEntries, ReleaseAgent } from './broker.ts';

export type ClientEntry = { readonly entry: Entry } | { readonly refusal: string };

export function clientEntry(
  entries: AuthorizedEntries,
  agent: ReleaseAgent,
  entryId: string,
  attested: readonly Selector[],
  now: number,
): ClientEntry {
  const nodeSelectors = new Set(agent.selectors.map(formatSelector));
  const entry = entries.authorizedEntry(agent.spiffeId, nodeSelectors, entryId, now);
  if (!entry) return { refusal: `agent is not authorized for entry "${entryId}"` };
  const have = new Set(attested.map(formatSelector));
  const missing = entry.selectors.map(formatSelector).filter((s) => !have.has(s));
  if (missing.length > 0)
    return {
      refusal: `the attested selectors do not match entry "${entryId}" (missing ${missing.length} of its selectors)`,
    };
  return { entry };
}
