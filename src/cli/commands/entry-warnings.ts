// Warnings of `entry create` about an entry that can never be delivered: a selector type no
// built-in attestor produces, or a parent ID that names no agent. SPIRE users mistype both
// (`unix:uid` vs `uid`, an agent ID copied wrong), and the server accepts them, since entries
// may be created before the agent attests or for attestors configured elsewhere.
import { NODE_SELECTOR_TYPES, WORKLOAD_SELECTOR_TYPES } from '../../core/selector.ts';
import type { Selector } from '../../core/selector.ts';

/**
 * What EntryService.CheckParent reports: "server", "agent", "join_token", "node_alias", or ""
 * when the ID names none of them (a newer server may add kinds: anything but "" is known).
 */
export type ParentKind = string;

/** A warning per selector type no built-in attestor produces (node ones under a server parent). */
export function selectorTypeWarnings(selectors: readonly Selector[], kind: ParentKind): string[] {
  const alias = kind === 'server';
  const known = alias ? NODE_SELECTOR_TYPES : WORKLOAD_SELECTOR_TYPES;
  const types = [...new Set(selectors.map((s) => s.type))].filter((t) => !known.includes(t));
  return types.map((t) =>
    alias
      ? `selector type "${t}" is not one the built-in node attestors produce ` +
        `(${known.join(', ')}): this node alias will match no agent`
      : `selector type "${t}" is not one the built-in workload attestors produce ` +
        `(${known.join(', ')}): this entry will match no workload`,
  );
}

/** A warning when the parent ID names no agent (not attested, no pending token, no alias). */
export function parentWarning(parentId: string, kind: ParentKind): string | null {
  if (kind !== '') return null;
  return (
    `parent ID ${parentId} is neither an attested agent, a pending join token's agent, ` +
    `nor a node alias (the SPIFFE ID of an existing entry): no agent will receive this entry ` +
    `until one does (see \`tessera agent list\`)`
  );
}
