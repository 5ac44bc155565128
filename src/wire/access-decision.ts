// Access decisions, test requests and what-if flips ↔ tessera/v1/access.proto. A TestAccess
// request is admin input describing a hypothetical client: every field is validated and bounded
// here, naming the field, before the decision sees it.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { AccessDecision, AccessHttpRequest, AccessRequest } from '../core/access.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import { parseSelector, type Selector } from '../core/selector.ts';
import { parseLeafId } from '../core/spiffe-id.ts';
import type {
  AccessDecision as WireDecision,
  AccessDecisionSchema,
  AccessFlipSchema,
  TestAccessRequest,
  WhatIfAccessResponseSchema,
} from '../../proto/gen/tessera/v1/access_pb.js';

export const MAX_TEST_SELECTORS = 256;
export const MAX_TEST_ATTRIBUTES = 256;
export const MAX_ATTRIBUTE_KEY_BYTES = 256;
export const MAX_ATTRIBUTE_VALUE_BYTES = 4096;
export const MAX_HTTP_METHOD_BYTES = 32;
export const MAX_HTTP_PATH_BYTES = 8192;
export const MAX_HTTP_HOST_BYTES = 255;

const REASONS: ReadonlySet<string> = new Set([
  'allowed',
  'denied-by-policy',
  'condition-false',
  'no-matching-policy',
  'unknown-server-workload',
]);

/** A decision's fields, read alike from the domain and the wire. */
function decisionFields(d: AccessDecision | WireDecision) {
  return {
    allowed: d.allowed,
    reason: d.reason,
    policy: d.policy,
    credentialProvider: d.credentialProvider,
    failedCondition: d.failedCondition,
  };
}

export function decisionToWire(d: AccessDecision): MessageInitShape<typeof AccessDecisionSchema> {
  return decisionFields(d);
}

/** Inverse of decisionToWire (clients); an unknown reason is kept out of the type by refusal. */
export function decisionFromWire(w: WireDecision | undefined): AccessDecision {
  if (!w) throw new InvalidArgumentError('decision: missing');
  if (!REASONS.has(w.reason))
    throw new InvalidArgumentError(`decision: unknown reason "${w.reason.slice(0, 40)}"`);
  return { ...decisionFields(w), reason: w.reason as AccessDecision['reason'] };
}

/** A TestAccess request as the decision's input; `now` stands in for at = 0. */
export function testRequestFromWire(w: TestAccessRequest, now: number): AccessRequest {
  if (w.client === '') throw new InvalidArgumentError('client: required');
  let client: string;
  try {
    client = parseLeafId(w.client, 'SPIFFE ID').toString();
  } catch (e) {
    throw new InvalidArgumentError(`client: ${(e as Error).message}`);
  }
  if (w.server === '') throw new InvalidArgumentError('server: required');
  if (w.selectors.length > MAX_TEST_SELECTORS)
    throw new InvalidArgumentError(`selectors: more than ${MAX_TEST_SELECTORS}`);
  const selectors: Selector[] = w.selectors.map((s, i) => {
    try {
      return parseSelector(s);
    } catch (e) {
      throw new InvalidArgumentError(`selectors[${i}]: ${(e as Error).message}`);
    }
  });
  const keys = Object.keys(w.attributes);
  if (keys.length > MAX_TEST_ATTRIBUTES)
    throw new InvalidArgumentError(`attributes: more than ${MAX_TEST_ATTRIBUTES}`);
  const attributes: Record<string, string> = {};
  for (const k of keys) {
    const v = w.attributes[k] ?? '';
    if (k === '' || Buffer.byteLength(k) > MAX_ATTRIBUTE_KEY_BYTES)
      throw new InvalidArgumentError(
        `attributes: a name must be 1..${MAX_ATTRIBUTE_KEY_BYTES} bytes`,
      );
    if (Buffer.byteLength(v) > MAX_ATTRIBUTE_VALUE_BYTES)
      throw new InvalidArgumentError(
        `attributes["${k}"]: longer than ${MAX_ATTRIBUTE_VALUE_BYTES} bytes`,
      );
    attributes[k] = v;
  }
  const at = Number(w.at);
  if (at < 0 || !Number.isSafeInteger(at))
    throw new InvalidArgumentError('at: must be Unix milliseconds (0 = now)');
  const request = w.request ? httpFacts(w.request) : undefined;
  return {
    client: { spiffeId: client, selectors, attributes },
    server: w.server,
    at: at === 0 ? now : at,
    ...(request ? { request } : {}),
  };
}

function httpFacts(r: AccessHttpRequest): AccessHttpRequest | undefined {
  if (r.method === '' && r.path === '' && r.host === '') return undefined;
  const bound = (field: string, v: string, max: number) => {
    if (Buffer.byteLength(v) > max)
      throw new InvalidArgumentError(`request.${field}: longer than ${max} bytes`);
    if (/[\u0000-\u001f\u007f]/.test(v))
      throw new InvalidArgumentError(`request.${field}: has control characters`);
    return v;
  };
  return {
    method: bound('method', r.method, MAX_HTTP_METHOD_BYTES),
    path: bound('path', r.path, MAX_HTTP_PATH_BYTES),
    host: bound('host', r.host, MAX_HTTP_HOST_BYTES),
  };
}

/** What-if's report (server/access/what-if.ts WhatIfReport), structurally. */
export interface WhatIfReportLike {
  readonly replayed: number;
  readonly unreadable: number;
  readonly truncated: boolean;
  readonly flipCount: number;
  readonly allowToDeny: number;
  readonly denyToAllow: number;
  readonly flips: ReadonlyArray<{
    readonly seq: number;
    readonly time: number;
    readonly client: string;
    readonly server: string;
    readonly before: AccessDecision;
    readonly after: AccessDecision;
  }>;
}

export function whatIfToWire(
  r: WhatIfReportLike,
): MessageInitShape<typeof WhatIfAccessResponseSchema> {
  return {
    replayed: r.replayed,
    unreadable: r.unreadable,
    truncated: r.truncated,
    flipCount: r.flipCount,
    allowToDeny: r.allowToDeny,
    denyToAllow: r.denyToAllow,
    flips: r.flips.map((f): MessageInitShape<typeof AccessFlipSchema> => ({
      seq: BigInt(f.seq),
      time: BigInt(f.time),
      client: f.client,
      server: f.server,
      before: decisionToWire(f.before),
      after: decisionToWire(f.after),
    })),
  };
}
