// A node attestor has two halves. The server half turns evidence from an agent into an agent
// identity and node selectors: one method, like SPIRE's NodeAttestor; an attestor that needs a
// proof of possession asks for it through `challenge`. The agent half produces that evidence and
// answers the challenges. Each kind is a folder holding both halves and their config schemas,
// listed in catalog.ts.
import type { z } from 'zod';
import type { Selector } from '../../core/selector.ts';
import type { JoinTokenPort } from './join-token/server.ts';
import type { AwsSigningCredentials } from '../../crypto/aws-sigv4/sign-request.ts';

/** Sends a challenge to the agent and resolves with its response (bounded by the server). */
export type ChallengeFn = (challenge: Uint8Array) => Promise<Uint8Array>;

export interface NodeAttestation {
  /** Path segments after /spire/agent/<type>/, unless `spiffeId` is set. */
  readonly idSegments: readonly string[];
  /** An explicit agent SPIFFE ID (e.g. one an operator bound to a join token). */
  readonly spiffeId?: string;
  readonly selectors: readonly Selector[];
  /** Whether the same node may attest again with the same evidence (join tokens: no). */
  readonly canReattest: boolean;
  /**
   * Trust on first use (SPIRE's aws_iid, gcp_iit, azure_msi): the server refuses the attestation
   * when a node with this agent ID is already recorded. Cloud evidence is the same (or replayable)
   * for the life of the instance, so only the first agent to present it is believed; evicting the
   * node lets it attest again.
   */
  readonly trustOnFirstUse?: boolean;
}

/** The server half. */
export interface NodeAttestor {
  readonly type: string;
  /** Throws PermissionDeniedError when the evidence does not hold. `payload` is untrusted. */
  attest(payload: Uint8Array, challenge: ChallengeFn): Promise<NodeAttestation>;
  /**
   * Attestors whose selectors include attributes the platform can change while the node runs
   * (aws_iid's tags from the EC2 API): re-reads them for a node already attested. Absent: none.
   */
  readonly refresher?: NodeSelectorRefresher;
}

/** What a refresh found for one node: its selectors as attestation would derive them now. */
export type NodeRefreshOutcome =
  | { readonly selectors: readonly Selector[] }
  /** Why they could not be read (instance gone, API error): the record is kept as it is. */
  | { readonly failed: string };

/**
 * Re-reads the platform-held attributes of attested nodes. It never widens trust: it only asks
 * the platform about the instance the stored (already verified) selectors name.
 */
export interface NodeSelectorRefresher {
  /** How often (ms) the server refreshes each attested node of this type. */
  readonly everyMs: number;
  /** `selectors`: the node's stored selectors, as verified at attestation. */
  refresh(selectors: readonly Selector[]): Promise<NodeRefreshOutcome>;
}

/** The agent half. */
export interface AgentNodeAttestor {
  readonly type: string;
  /** join_token: a token attests once; x509pop: the same certificate may attest again. */
  readonly canReattest: boolean;
  payload(): Promise<Uint8Array>;
  /** tpm answers by driving the TPM (asynchronously); the others synchronously. */
  answer(challenge: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** What the server's composition root hands every server half: narrow ports, no store. */
export interface NodeAttestorServerDeps {
  readonly now: () => number;
  /** Single use of join tokens, enforced by the datastore. */
  readonly joinTokens: JoinTokenPort;
  /**
   * The server's AWS credentials from the standard environment (AWS_ACCESS_KEY_ID,
   * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), or null when unset: aws_iid's EC2 API calls.
   */
  readonly awsCredentials?: AwsSigningCredentials | null;
  /** HTTP for attestors that call a cloud API (aws_iid's EC2 API); default: global fetch. */
  readonly fetch?: typeof fetch;
}

/** One kind of node attestor: its two halves and the config schema of each. */
export interface NodeAttestorPlugin<
  S extends z.ZodType = z.ZodType,
  A extends z.ZodType = z.ZodType,
> {
  readonly type: string;
  /** Config of the server half, under `node_attestors.<type>` in the server config. */
  readonly serverSchema: S;
  createServer(config: z.output<S>, deps: NodeAttestorServerDeps): NodeAttestor;
  /** Config of the agent half, under `<type>` in the agent config. */
  readonly agentSchema: A;
  createAgent(config: z.output<A>): Promise<AgentNodeAttestor>;
}

export const MAX_ATTESTATION_PAYLOAD_BYTES = 64 * 1024;
