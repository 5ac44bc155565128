// The contract between the agent's cloud metadata listener (cloud-listener.ts) and the cloud
// endpoints it serves (aws/, gcp/, azure/; docs/cloud-credentials.md). The listener accepts
// loopback HTTP, pins the TCP peer at accept and routes each request to the endpoint whose
// prefix matches; the endpoint checks the platform's headers first (before any attestation, as
// the real services do), then attests the caller and answers in the platform's exact shapes.
import type { IncomingHttpHeaders } from 'node:http';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { CredentialService } from '../credentials/credential-service.ts';
import type { WorkloadIdentitySource } from '../workload-api/identity-source.ts';

export interface CloudRequest {
  readonly method: string;
  /** Percent-decoded path, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The request body (bounded by the listener; "" for GET). */
  readonly body: string;
  /**
   * The calling process, attested (loopback TCP peer → process → selectors → entries) on first
   * use and reused for the connection. Throws PermissionDeniedError when the caller cannot be
   * attested or has no identity.
   */
  caller(): Promise<AttestedCaller>;
  /**
   * The calling process as pinned when the connection was accepted: `pid:starttime`, which no
   * other process has while this boot lasts (IMDSv2 tokens are bound to it). No attestation.
   * Throws PermissionDeniedError when the peer could not be identified.
   */
  processKey(): Promise<string>;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

export interface CloudResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as is (the endpoint sets content-type). */
  readonly body: string;
}

/** What every endpoint may use. */
export interface CloudContext {
  /** Released credentials for (caller, server workload): the agent cache, else the server. */
  readonly credentials: CredentialService;
  /**
   * The caller's JWT-SVIDs (GCE identity tokens, external-account subject tokens): what the
   * Workload API would give the same caller, no more.
   */
  readonly identities: Pick<WorkloadIdentitySource, 'fetchJwtSvids'>;
  /** Structured log lines; never pass a credential or token. */
  readonly log: {
    info(fields: Record<string, unknown>, msg: string): void;
    warn(fields: Record<string, unknown>, msg: string): void;
    debug(fields: Record<string, unknown>, msg: string): void;
  };
}

export interface CloudEndpoint {
  /** For logs: `aws-imds`, `aws-container`, `gcp-metadata`, `azure-imds`, ... */
  readonly name: string;
  /** Path prefixes this endpoint serves (`/latest/`, `/computeMetadata/`, ...). */
  readonly prefixes: readonly string[];
  /**
   * The answer. Errors are the endpoint's to render in its platform's terms; anything thrown
   * becomes a 500 with a correlation id (logged, never shown).
   */
  handle(req: CloudRequest, ctx: CloudContext): Promise<CloudResponse>;
}
