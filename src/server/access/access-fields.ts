// Validation at the edge of the access model: names, server workload fields and the `present`
// spelling against the protocol, policy effect and provider. Errors name the field as the proto
// and the YAML document spell it (`port: ...`), prefixed by where it sits in a document
// (`server_workloads[2].port: ...`). Untrusted, from the caller: every size is bounded.
import { isIP } from 'node:net';
import {
  type AccessPolicy,
  NAME_PATTERN,
  SERVER_PROTOCOLS,
  type ServerProtocol,
  type ServerWorkload,
  isCloudProtocol,
} from '../../core/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { checkTls } from './tls-fields.ts';

export const MAX_HOST_LENGTH = 253;
export const MAX_PATH_PREFIX_LENGTH = 1024;
export const MAX_CLIENT_PATTERN_LENGTH = 2048;
export const MAX_CONDITION_LENGTH = 4096;
export const MAX_PRESENT_NAME_LENGTH = 128;

export interface ServerWorkloadInput {
  name: string;
  host: string;
  port: number;
  protocol: string;
  pathPrefix: string;
  present: string;
  tls: boolean;
  tlsCa: string;
  tlsDecrypt: boolean;
}

export interface CredentialProviderInput {
  name: string;
  type: string;
  config: unknown;
}

export interface AccessPolicyInput {
  name: string;
  client: string;
  server: string;
  credentialProvider: string;
  condition: string;
  deny: boolean;
}

/** Where a field sits: "" at the edge, "access_policies[3]." inside a document. */
export type At = string;

export const fieldError = (at: At, field: string, message: string) =>
  new InvalidArgumentError(`${at}${field}: ${message}`);

/** A short, printable rendering of an untrusted value for an error message. */
export const shown = (v: string): string =>
  JSON.stringify(v.length > 64 ? v.slice(0, 64) + '…' : v);

export function checkName(at: At, field: string, v: string): string {
  if (typeof v !== 'string' || v === '') throw fieldError(at, field, 'is required');
  if (!NAME_PATTERN.test(v))
    throw fieldError(
      at,
      field,
      `${shown(v)} is not a valid name (lowercase letters, digits, ".", "_", "-"; at most 63 characters, starting and ending with a letter or digit)`,
    );
  return v;
}

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function checkHost(at: At, v: string): string {
  if (v === '') throw fieldError(at, 'host', 'is required');
  if (v.length > MAX_HOST_LENGTH)
    throw fieldError(at, 'host', `longer than ${MAX_HOST_LENGTH} characters`);
  if (v.includes('://'))
    throw fieldError(at, 'host', `${shown(v)} has a scheme: give the host only`);
  if (/[/?#@]/.test(v))
    throw fieldError(at, 'host', `${shown(v)} is not a host (no path, query or userinfo)`);
  if (isIP(v) !== 0) return v;
  const name = v.endsWith('.') ? v.slice(0, -1) : v;
  if (!name.split('.').every((l) => LABEL.test(l)))
    throw fieldError(at, 'host', `${shown(v)} is neither a hostname nor an IP address`);
  return v;
}

function checkPort(at: At, v: number): number {
  if (!Number.isInteger(v) || v < 1 || v > 65535)
    throw fieldError(at, 'port', `must be an integer between 1 and 65535`);
  return v;
}

function checkProtocol(at: At, v: string): ServerProtocol {
  if (!(SERVER_PROTOCOLS as readonly string[]).includes(v))
    throw fieldError(
      at,
      'protocol',
      v === '' ? 'is required' : `${shown(v)} is not one of ${SERVER_PROTOCOLS.join(', ')}`,
    );
  return v as ServerProtocol;
}

const isHttp = (p: ServerProtocol) => p === 'http' || p === 'https';

function checkPathPrefix(at: At, v: string, protocol: ServerProtocol): string {
  if (v === '') return v;
  if (!isHttp(protocol)) throw fieldError(at, 'path_prefix', 'only http and https have paths');
  if (v.length > MAX_PATH_PREFIX_LENGTH)
    throw fieldError(at, 'path_prefix', `longer than ${MAX_PATH_PREFIX_LENGTH} characters`);
  if (!v.startsWith('/')) throw fieldError(at, 'path_prefix', 'must start with "/"');
  if (/[\s?#\u0000-\u001f\u007f]/.test(v))
    throw fieldError(at, 'path_prefix', 'must not contain spaces, control characters, "?" or "#"');
  return v;
}

/** RFC 9110 token characters: what an HTTP header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Unreserved URL characters (RFC 3986): a query parameter name needing no encoding. */
const QUERY_NAME = /^[A-Za-z0-9._~-]+$/;

/** The `present` spellings and the protocols that can carry each. */
const PRESENT_PROTOCOLS: Readonly<Record<string, readonly ServerProtocol[]>> = {
  'authorization-bearer': ['http', 'https'],
  basic: ['http', 'https'],
  'aws-sigv4': ['http', 'https'],
  header: ['http', 'https'],
  query: ['http', 'https'],
  'postgres-password': ['postgres'],
  'redis-auth': ['redis'],
  'mysql-password': ['mysql'],
};

function checkPresent(at: At, v: string, protocol: ServerProtocol): string {
  if (v === '') return v;
  if (isCloudProtocol(protocol))
    throw fieldError(
      at,
      'present',
      `${protocol} server workloads take no present: the cloud SDK fetches the credential from the agent`,
    );
  const colon = v.indexOf(':');
  const kind = colon < 0 ? v : v.slice(0, colon);
  const allowed = Object.hasOwn(PRESENT_PROTOCOLS, kind) ? PRESENT_PROTOCOLS[kind] : undefined;
  const named = kind === 'header' || kind === 'query';
  if (!allowed || named !== colon >= 0)
    throw fieldError(
      at,
      'present',
      `${shown(v)} is not one of authorization-bearer, header:NAME, basic, query:NAME, postgres-password, redis-auth, mysql-password, aws-sigv4`,
    );
  if (named) {
    const name = v.slice(colon + 1);
    const pattern = kind === 'header' ? HEADER_NAME : QUERY_NAME;
    if (name.length === 0 || name.length > MAX_PRESENT_NAME_LENGTH || !pattern.test(name))
      throw fieldError(at, 'present', `${shown(v)}: ${shown(name)} is not a valid ${kind} name`);
  }
  if (!allowed.includes(protocol))
    throw fieldError(
      at,
      'present',
      `${kind} is for ${allowed.join(' and ')} server workloads, not ${protocol}`,
    );
  return v;
}

/** A validated server workload's fields (timestamps are the service's). */
export function checkServerWorkload(
  at: At,
  w: ServerWorkloadInput,
): Omit<ServerWorkload, 'createdAt' | 'updatedAt'> {
  const name = checkName(at, 'name', w.name);
  const protocol = checkProtocol(at, w.protocol);
  // A cloud target needs no address: its SDK calls the agent's cloud endpoints. One given is
  // checked like any other (it may narrow, e.g. a regional endpoint).
  const cloud = isCloudProtocol(protocol);
  const host = cloud && w.host === '' ? '' : checkHost(at, w.host);
  const port = cloud && w.port === 0 ? 0 : checkPort(at, w.port);
  const pathPrefix = checkPathPrefix(at, w.pathPrefix, protocol);
  const present = checkPresent(at, w.present, protocol);
  const tls = checkTls(at, protocol, w);
  return { name, host, port, protocol, pathPrefix, present, ...tls };
}

/**
 * The policy's own fields: names, sizes and effect ↔ provider. The client pattern and the CEL
 * condition are checked by the injected checkPolicy (server/access/check-policy.ts).
 */
export function checkPolicyFields(
  at: At,
  p: AccessPolicyInput,
): Omit<AccessPolicy, 'createdAt' | 'updatedAt'> {
  const name = checkName(at, 'name', p.name);
  if (p.client === '') throw fieldError(at, 'client', 'is required');
  if (p.client.length > MAX_CLIENT_PATTERN_LENGTH)
    throw fieldError(at, 'client', `longer than ${MAX_CLIENT_PATTERN_LENGTH} characters`);
  const server = checkName(at, 'server', p.server);
  if (p.condition.length > MAX_CONDITION_LENGTH)
    throw fieldError(at, 'condition', `longer than ${MAX_CONDITION_LENGTH} characters`);
  if (p.deny) {
    if (p.credentialProvider !== '')
      throw fieldError(at, 'credential_provider', 'a deny policy releases nothing: leave it empty');
  } else {
    if (p.credentialProvider === '')
      throw fieldError(at, 'credential_provider', 'an allow policy needs a credential provider');
    checkName(at, 'credential_provider', p.credentialProvider);
  }
  return {
    name,
    client: p.client,
    server,
    credentialProvider: p.deny ? '' : p.credentialProvider,
    condition: p.condition,
    effect: p.deny ? 'deny' : 'allow',
  };
}

/** Re-throws an injected validator's error with the document position in front. */
export function withAt<T>(at: At, fn: () => T): T {
  if (at === '') return fn();
  try {
    return fn();
  } catch (e) {
    if (e instanceof InvalidArgumentError)
      throw new InvalidArgumentError(`${at}${e.message}`, { cause: e });
    throw e;
  }
}
