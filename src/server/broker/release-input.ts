// The agent's release request, checked at the edge: every field is untrusted (the agent is
// authenticated, the workload behind it only attested by it), so each is bounded and named when
// refused. Nothing here reads state.
import { randomUUID } from 'node:crypto';
import { NAME_PATTERN, type AccessHttpRequest } from '../../core/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { type Selector, parseSelector } from '../../core/selector.ts';

export const MAX_RELEASE_SELECTORS = 64;
export const MAX_RELEASE_ATTRIBUTES = 64;
export const MAX_ATTRIBUTE_KEY_BYTES = 128;
export const MAX_ATTRIBUTE_VALUE_BYTES = 1024;
const MAX_ENTRY_ID = 64;
const MAX_METHOD = 16;
const MAX_PATH_BYTES = 2048;
const MAX_HOST_BYTES = 255;
/** A correlation id the agent may choose: short, printable, no spaces (it ends up in logs). */
const CORRELATION_ID = /^[A-Za-z0-9._:-]{8,64}$/;
const ATTRIBUTE_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$/;

/** As the RPC carries it (release.proto ReleaseCredentialRequest). */
export interface ReleaseInput {
  readonly entryId: string;
  readonly selectors: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
  readonly server: string;
  readonly httpMethod: string;
  readonly httpPath: string;
  readonly httpHost: string;
  readonly correlationId: string;
}

export interface CheckedRelease {
  readonly entryId: string;
  readonly selectors: readonly Selector[];
  readonly attributes: Readonly<Record<string, string>>;
  readonly server: string;
  readonly request?: AccessHttpRequest;
  readonly correlationId: string;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export function checkReleaseInput(r: ReleaseInput): CheckedRelease {
  if (r.entryId === '' || r.entryId.length > MAX_ENTRY_ID)
    throw new InvalidArgumentError(`entry_id: 1..${MAX_ENTRY_ID} characters`);
  if (!NAME_PATTERN.test(r.server))
    throw new InvalidArgumentError(
      `server: "${r.server.slice(0, 64)}" is not a server workload name`,
    );
  if (r.selectors.length > MAX_RELEASE_SELECTORS)
    throw new InvalidArgumentError(`selectors: at most ${MAX_RELEASE_SELECTORS}`);
  const selectors = r.selectors.map(parseSelector);
  return {
    entryId: r.entryId,
    selectors,
    attributes: checkAttributes(r.attributes),
    server: r.server,
    ...httpRequest(r),
    correlationId: CORRELATION_ID.test(r.correlationId) ? r.correlationId : randomUUID(),
  };
}

export function checkAttributes(a: Readonly<Record<string, string>>): Record<string, string> {
  const keys = Object.keys(a);
  if (keys.length > MAX_RELEASE_ATTRIBUTES)
    throw new InvalidArgumentError(`attributes: at most ${MAX_RELEASE_ATTRIBUTES}`);
  // A null-prototype copy: a key like "__proto__" stays a plain key.
  const out = Object.create(null) as Record<string, string>;
  for (const k of keys.sort()) {
    const v = a[k] ?? '';
    if (bytes(k) > MAX_ATTRIBUTE_KEY_BYTES || !ATTRIBUTE_KEY.test(k))
      throw new InvalidArgumentError(
        `attributes: key "${k.slice(0, 64)}" must be 1..${MAX_ATTRIBUTE_KEY_BYTES} bytes of [A-Za-z0-9_.:/-]`,
      );
    if (bytes(v) > MAX_ATTRIBUTE_VALUE_BYTES)
      throw new InvalidArgumentError(
        `attributes: value of "${k}" is longer than ${MAX_ATTRIBUTE_VALUE_BYTES} bytes`,
      );
    out[k] = v;
  }
  return { ...out };
}

function httpRequest(r: ReleaseInput): { request?: AccessHttpRequest } {
  if (r.httpMethod === '' && r.httpPath === '' && r.httpHost === '') return {};
  if (!/^[A-Z]{1,16}$/.test(r.httpMethod))
    throw new InvalidArgumentError(`http_method: 1..${MAX_METHOD} uppercase letters`);
  if (bytes(r.httpPath) > MAX_PATH_BYTES || /[\u0000-\u001f\u007f]/.test(r.httpPath))
    throw new InvalidArgumentError(
      `http_path: at most ${MAX_PATH_BYTES} bytes, no control characters`,
    );
  if (bytes(r.httpHost) > MAX_HOST_BYTES || !/^[A-Za-z0-9.:[\]-]*$/.test(r.httpHost))
    throw new InvalidArgumentError(`http_host: at most ${MAX_HOST_BYTES} bytes of a host[:port]`);
  return { request: { method: r.httpMethod, path: r.httpPath, host: r.httpHost } };
}
