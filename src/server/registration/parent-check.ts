// What an entry's parent ID names. An entry is delivered only to the agent its parent ID names
// (directly, or through a node alias entry), so a mistyped parent gives an entry that never
// matches; `entry create` asks this to warn about it. Read only.
import { SpiffeId, isAgentId, serverId, type TrustDomain } from '../../core/spiffe-id.ts';
import type { Store } from '../../store/types.ts';

export type ParentKind = 'server' | 'agent' | 'join_token' | 'node_alias' | '';

/** The segment after /spire/agent/join_token/ of a token's default agent ID: a hash prefix. */
const JOIN_TOKEN_PREFIX = '/spire/agent/join_token/';

export async function checkParent(
  store: Pick<Store, 'nodes' | 'joinTokens' | 'entries'>,
  td: TrustDomain,
  parentId: string,
  now: number,
): Promise<ParentKind> {
  const id = SpiffeId.parse(parentId);
  if (!id.memberOf(td)) return '';
  const text = id.toString();
  if (text === serverId(td).toString()) return 'server';
  if (isAgentId(id)) {
    const node = await store.nodes.get(text);
    if (node && !node.banned) return 'agent';
  }
  const segment = id.path.startsWith(JOIN_TOKEN_PREFIX)
    ? id.path.slice(JOIN_TOKEN_PREFIX.length)
    : '';
  const pending =
    segment !== '' && !segment.includes('/')
      ? await store.joinTokens.pendingExists({ hashPrefix: segment }, now)
      : await store.joinTokens.pendingExists({ spiffeId: text }, now);
  if (pending) return 'join_token';
  const alias = await store.entries.list({ spiffeId: text }, 1, '');
  return alias.items.length > 0 ? 'node_alias' : '';
}
