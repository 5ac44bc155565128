// Establishes who is calling. Untrusted input: the client certificate chain from the TLS
// handshake (TLS has proven possession of the leaf key; we check everything else here).
import type { Clock } from '../../core/clock.ts';
import { UnauthenticatedError } from '../../core/errors.ts';
import { AgentRefusedError } from '../../core/refusal.ts';
import { SpiffeId, isAgentId } from '../../core/spiffe-id.ts';
import { verifyX509Svid } from '../../crypto/x509/verify.ts';
import type { NodeStore } from '../../store/types.ts';
import type { AgentService } from '../attestation/agent-service.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import type { Caller } from '../../core/caller.ts';
import type { EntryIndex } from '../registration/entry-index.ts';

/** What the transport knows about the peer. */
export type Peer =
  | { kind: 'local' }
  | {
      kind: 'tls';
      chainDer: readonly Uint8Array[];
      /** The client's IP address ("" when unknown): the key of the per-address rate limits. */
      address?: string;
    };

export interface AuthenticatorOptions {
  store: { readonly nodes: Pick<NodeStore, 'get'> };
  bundles: BundleCache;
  index: EntryIndex;
  agents: AgentService;
  clock: Clock;
  trustDomain: string;
}

export class Authenticator {
  readonly #o: AuthenticatorOptions;
  readonly #verified = new WeakMap<
    readonly Uint8Array[],
    { spiffeId: string; serialHex: string; notAfter: number; sequence: number }
  >();
  constructor(o: AuthenticatorOptions) {
    this.#o = o;
  }

  async resolve(peer: Peer): Promise<Caller> {
    if (peer.kind === 'local') return { kind: 'local-admin' };
    if (peer.chainDer.length === 0) return { kind: 'anonymous' };
    const verified = this.#verify(peer.chainDer);
    const id = SpiffeId.parse(verified.spiffeId);
    if (id.trustDomain.name !== this.#o.trustDomain) {
      throw new UnauthenticatedError(`client SVID is from trust domain ${id.trustDomain.name}`);
    }
    const spiffeId = id.toString();
    if (isAgentId(id)) return this.#agent(spiffeId, verified.serialHex);
    if (this.#o.index.isAdmin(spiffeId, this.#o.clock.now())) return { kind: 'admin', spiffeId };
    return { kind: 'workload', spiffeId };
  }

  /**
   * Path validation of a connection's client chain, remembered per connection (the chain array
   * is the same object for every request on it) until the bundle changes or the leaf expires.
   */
  #verify(chainDer: readonly Uint8Array[]): { spiffeId: string; serialHex: string } {
    const now = this.#o.clock.now();
    const sequence = this.#o.bundles.bundle.sequence;
    const hit = this.#verified.get(chainDer);
    if (hit && hit.sequence === sequence && now < hit.notAfter) return hit;
    try {
      const v = verifyX509Svid(chainDer, this.#o.bundles.x509Roots, now);
      this.#verified.set(chainDer, { ...v, sequence });
      return v;
    } catch (e) {
      throw new UnauthenticatedError(
        `client certificate is not a valid X.509-SVID: ${(e as Error).message}`,
      );
    }
  }

  /** Agents are re-checked against their node record on every call: ban and evict act at once. */
  async #agent(spiffeId: string, serial: string): Promise<Caller> {
    let node = await this.#o.store.nodes.get(spiffeId);
    if (!node) {
      throw new AgentRefusedError('agent_unknown', `agent ${spiffeId} is not attested (evicted?)`);
    }
    if (node.banned) throw new AgentRefusedError('agent_banned', `agent ${spiffeId} is banned`);
    if (serial === node.newSerialNumber && serial !== '') {
      node = await this.#o.agents.promoteSerial(node, serial);
    } else if (serial !== node.serialNumber) {
      throw new AgentRefusedError(
        'agent_svid_superseded',
        `agent ${spiffeId} presented an SVID that is no longer current`,
      );
    }
    return { kind: 'agent', spiffeId, node, serial };
  }
}
