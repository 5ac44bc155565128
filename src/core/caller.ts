// Who is calling, as established at the edge (TLS peer certificate or the local admin socket).
// Services receive it; they never look at transport details themselves.
import type { AttestedNode } from './node.ts';

export type Caller =
  | { readonly kind: 'local-admin' }
  | { readonly kind: 'anonymous' }
  /** An attested agent presenting its current agent SVID. */
  | {
      readonly kind: 'agent';
      readonly spiffeId: string;
      readonly node: AttestedNode;
      readonly serial: string;
    }
  /** A workload whose SVID belongs to an entry marked admin. */
  | { readonly kind: 'admin'; readonly spiffeId: string }
  /** Any other valid SVID of this trust domain. */
  | { readonly kind: 'workload'; readonly spiffeId: string };

export interface RequestContext {
  readonly caller: Caller;
  readonly correlationId: string;
}

export function actorOf(caller: Caller): string {
  switch (caller.kind) {
    case 'local-admin':
      return 'local-admin';
    case 'anonymous':
      return 'anonymous';
    default:
      return caller.spiffeId;
  }
}
