// Released credentials and denials ↔ the wire (tessera/v1/release.proto). The server encodes,
// the agent decodes. expires_at is Unix milliseconds, 0 = does not expire.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { AccessDecisionReason, Credential, CredentialValue } from '../core/access.ts';
import { TesseraError } from '../core/errors.ts';
import type {
  Denial as WireDenial,
  ReleaseCredentialResponseSchema,
  ReleasedCredential as WireReleased,
} from '../../proto/gen/tessera/v1/release_pb.js';

type ResponseInit = MessageInitShape<typeof ReleaseCredentialResponseSchema>;

/** A released credential and what the agent caches it under. */
export interface Released {
  readonly credential: Credential;
  readonly client: string;
  readonly server: string;
  readonly present: string;
  readonly policy: string;
  readonly credentialProvider: string;
  readonly correlationId: string;
  /** Decided under a condition reading `request`: cached for that HTTP request only. */
  readonly requestDependent?: boolean;
}

export interface Denied {
  readonly reason: AccessDecisionReason;
  readonly policy: string;
  readonly failedCondition: string;
  readonly correlationId: string;
}

function valueToWire(v: CredentialValue): WireValueInit {
  switch (v.kind) {
    case 'token':
      return { case: 'token', value: v.token };
    case 'password':
      return { case: 'password', value: { username: v.username, password: v.password } };
    case 'aws':
      return {
        case: 'aws',
        value: {
          accessKeyId: v.accessKeyId,
          secretAccessKey: v.secretAccessKey,
          sessionToken: v.sessionToken,
        },
      };
  }
}

type WireValueInit =
  | { case: 'token'; value: string }
  | { case: 'password'; value: { username: string; password: string } }
  | {
      case: 'aws';
      value: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
    };

export function releasedToWire(r: Released): ResponseInit {
  return {
    result: {
      case: 'credential',
      value: {
        value: valueToWire(r.credential.value),
        expiresAt: BigInt(r.credential.expiresAt ?? 0),
        leaseId: r.credential.leaseId,
        client: r.client,
        server: r.server,
        present: r.present,
        policy: r.policy,
        credentialProvider: r.credentialProvider,
        correlationId: r.correlationId,
        requestDependent: r.requestDependent === true,
      },
    },
  };
}

export function deniedToWire(d: Denied): ResponseInit {
  return {
    result: {
      case: 'denial',
      value: {
        reason: d.reason,
        policy: d.policy,
        failedCondition: d.failedCondition,
        correlationId: d.correlationId,
      },
    },
  };
}

/** The agent's side: `internal` when the server sent a credential without a value (the server's
 * fault, not the workload's). */
export function releasedFromWire(w: WireReleased): Released {
  return {
    credential: {
      value: valueFromWire(w.value),
      expiresAt: w.expiresAt === 0n ? null : Number(w.expiresAt),
      leaseId: w.leaseId,
    },
    client: w.client,
    server: w.server,
    present: w.present,
    policy: w.policy,
    credentialProvider: w.credentialProvider,
    correlationId: w.correlationId,
    ...(w.requestDependent ? { requestDependent: true } : {}),
  };
}

export function deniedFromWire(w: WireDenial): Denied {
  return {
    reason: w.reason as AccessDecisionReason,
    policy: w.policy,
    failedCondition: w.failedCondition,
    correlationId: w.correlationId,
  };
}

function valueFromWire(v: WireReleased['value']): CredentialValue {
  switch (v.case) {
    case 'token':
      return { kind: 'token', token: v.value };
    case 'password':
      return { kind: 'password', username: v.value.username, password: v.value.password };
    case 'aws':
      return {
        kind: 'aws',
        accessKeyId: v.value.accessKeyId,
        secretAccessKey: v.value.secretAccessKey,
        sessionToken: v.value.sessionToken,
      };
    default:
      throw new TesseraError('internal', 'released credential: no value');
  }
}
