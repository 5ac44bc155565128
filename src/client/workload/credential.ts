// The workload's side of the agent's credential API (tessera.access.v1.Credentials): the
// credential as a plain object, and a denial as an error that names the reason, the deciding
// policy and the failed condition (from the tessera.v1.Denial detail the agent attaches).
import { ConnectError } from '@connectrpc/connect';
import { PermissionDeniedError } from '../../core/errors.ts';
import type { GetCredentialResponse } from '../../../proto/gen/tessera/access/v1/credentials_pb.js';
import { DenialSchema } from '../../../proto/gen/tessera/v1/release_pb.js';

export type WorkloadCredentialValue =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  | {
      readonly kind: 'aws';
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken: string;
    };

export interface WorkloadCredential {
  readonly spiffeId: string;
  readonly serverWorkload: string;
  readonly value: WorkloadCredentialValue;
  /** Epoch ms; null when it does not expire. */
  readonly expiresAt: number | null;
  /** How the server workload expects it (authorization-bearer, header:NAME, basic, ...). */
  readonly present: string;
  readonly leaseId: string;
  readonly correlationId: string;
}

export interface CredentialParams {
  /** Server workload name. */
  readonly serverWorkload: string;
  /** Ask as this identity (default: the caller's first). */
  readonly spiffeId?: string;
}

/** The agent (for the server) denied the credential. The message says why. */
export class CredentialDenied extends PermissionDeniedError {
  readonly reason: string;
  readonly policy: string;
  readonly failedCondition: string;
  readonly correlationId: string;
  constructor(
    message: string,
    d: { reason: string; policy: string; failedCondition: string; correlationId: string },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CredentialDenied';
    this.reason = d.reason;
    this.policy = d.policy;
    this.failedCondition = d.failedCondition;
    this.correlationId = d.correlationId;
  }
}

/** A PermissionDenied carrying a Denial detail as CredentialDenied; null for anything else. */
export function credentialDenied(e: unknown): CredentialDenied | null {
  if (!(e instanceof ConnectError)) return null;
  const d = e.findDetails(DenialSchema)[0];
  if (!d) return null;
  return new CredentialDenied(e.rawMessage, d, { cause: e });
}

export function parseCredential(r: GetCredentialResponse): WorkloadCredential {
  const v = r.value;
  const value: WorkloadCredentialValue =
    v.case === 'token'
      ? { kind: 'token', token: v.value }
      : v.case === 'password'
        ? { kind: 'password', username: v.value.username, password: v.value.password }
        : v.case === 'aws'
          ? {
              kind: 'aws',
              accessKeyId: v.value.accessKeyId,
              secretAccessKey: v.value.secretAccessKey,
              sessionToken: v.value.sessionToken,
            }
          : { kind: 'token', token: '' };
  return {
    spiffeId: r.spiffeId,
    serverWorkload: r.serverWorkload,
    value,
    expiresAt: r.expiresAt === 0n ? null : Number(r.expiresAt),
    present: r.present,
    leaseId: r.leaseId,
    correlationId: r.correlationId,
  };
}
