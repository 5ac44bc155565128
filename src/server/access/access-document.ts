// The YAML access document (docs/access.md "The access document"): top-level lists
// `server_workloads`, `credential_providers` and `access_policies`, fields snake_case as in
// proto/tessera/v1/access.proto. Parsing checks the shape and every field that needs nothing
// but the document; provider configs (the catalog), secrets, client patterns and conditions are
// checked by the importer (access-import.ts) and by what-if. Untrusted input: bounded in bytes,
// objects per kind, YAML aliases; errors name the list index and field.
import { parseDocument } from 'yaml';
import { type AccessPolicy, type ServerWorkload, isCloudProtocol } from '../../core/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import {
  type CredentialProviderInput,
  checkName,
  checkPolicyFields,
  checkServerWorkload,
} from './access-fields.ts';

export const MAX_ACCESS_DOCUMENT_BYTES = 1024 * 1024;
export const MAX_OBJECTS_PER_KIND = 10_000;

export interface AccessDocument {
  readonly serverWorkloads: readonly Omit<ServerWorkload, 'createdAt' | 'updatedAt'>[];
  /** Config not yet checked by the type's schema. */
  readonly credentialProviders: readonly CredentialProviderInput[];
  readonly accessPolicies: readonly Omit<AccessPolicy, 'createdAt' | 'updatedAt'>[];
}

type Obj = Record<string, unknown>;

const bad = (path: string, message: string) => new InvalidArgumentError(`${path}: ${message}`);

const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Refuses keys outside `known`, naming the first one with its path. */
function onlyKeys(path: string, o: Obj, known: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k))
      throw bad(
        path === '' ? k.slice(0, 64) : `${path}.${k.slice(0, 64)}`,
        `unknown key (known: ${known.join(', ')})`,
      );
  }
}

function str(path: string, o: Obj, key: string, required: boolean): string {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw bad(`${path}.${key}`, 'is required');
    return '';
  }
  if (typeof v !== 'string') throw bad(`${path}.${key}`, 'must be a string');
  return v;
}

function flag(path: string, o: Obj, key: string): boolean {
  const v = o[key] ?? false;
  if (typeof v !== 'boolean') throw bad(`${path}.${key}`, 'must be true or false');
  return v;
}

function list(path: string, v: unknown): Obj[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(path, 'must be a list');
  if (v.length > MAX_OBJECTS_PER_KIND) throw bad(path, `more than ${MAX_OBJECTS_PER_KIND} objects`);
  return v.map((item, i) => {
    if (!isMap(item)) throw bad(`${path}[${i}]`, 'must be a mapping');
    return item;
  });
}

function unique<T extends { name: string }>(kind: string, items: readonly T[]): void {
  const first = new Map<string, number>();
  items.forEach((it, i) => {
    const j = first.get(it.name);
    if (j !== undefined)
      throw bad(`${kind}[${i}].name`, `"${it.name}" is already used by ${kind}[${j}]`);
    first.set(it.name, i);
  });
}

const WORKLOAD_KEYS = [
  'name',
  'host',
  'port',
  'protocol',
  'path_prefix',
  'present',
  'tls',
  'tls_ca',
  'tls_decrypt',
];
const PROVIDER_KEYS = ['name', 'type', 'config'];
const POLICY_KEYS = ['name', 'client', 'server', 'credential_provider', 'condition', 'deny'];

function workload(path: string, o: Obj): Omit<ServerWorkload, 'createdAt' | 'updatedAt'> {
  onlyKeys(path, o, WORKLOAD_KEYS);
  const name = str(path, o, 'name', true);
  const protocol = str(path, o, 'protocol', true);
  // Cloud targets (aws, gcp, azure) need no host or port.
  const cloud = isCloudProtocol(protocol);
  const port = o.port ?? (cloud ? 0 : undefined);
  if (port === undefined || port === null) throw bad(`${path}.port`, 'is required');
  if (typeof port !== 'number') throw bad(`${path}.port`, 'must be an integer');
  return checkServerWorkload(`${path}.`, {
    name,
    host: str(path, o, 'host', !cloud),
    port,
    protocol,
    pathPrefix: str(path, o, 'path_prefix', false),
    present: str(path, o, 'present', false),
    tls: flag(path, o, 'tls'),
    tlsCa: str(path, o, 'tls_ca', false),
    tlsDecrypt: flag(path, o, 'tls_decrypt'),
  });
}

function provider(path: string, o: Obj): CredentialProviderInput {
  onlyKeys(path, o, PROVIDER_KEYS);
  const config = o.config ?? {};
  if (!isMap(config)) throw bad(`${path}.config`, 'must be a mapping');
  return {
    name: checkName(`${path}.`, 'name', str(path, o, 'name', true)),
    type: str(path, o, 'type', true),
    config,
  };
}

function policy(path: string, o: Obj): Omit<AccessPolicy, 'createdAt' | 'updatedAt'> {
  onlyKeys(path, o, POLICY_KEYS);
  const deny = o.deny ?? false;
  if (typeof deny !== 'boolean') throw bad(`${path}.deny`, 'must be true or false');
  return checkPolicyFields(`${path}.`, {
    name: str(path, o, 'name', true),
    client: str(path, o, 'client', true),
    server: str(path, o, 'server', true),
    credentialProvider: str(path, o, 'credential_provider', false),
    condition: str(path, o, 'condition', false),
    deny,
  });
}

/** Parses and checks the document's shape and self-contained fields. */
export function parseAccessDocument(text: string): AccessDocument {
  if (Buffer.byteLength(text, 'utf8') > MAX_ACCESS_DOCUMENT_BYTES)
    throw new InvalidArgumentError(
      `access document: larger than ${MAX_ACCESS_DOCUMENT_BYTES / 1048576} MiB`,
    );
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err)
    throw new InvalidArgumentError(`access document: invalid YAML: ${firstLine(err.message)}`);
  let top: unknown;
  try {
    top = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new InvalidArgumentError(
      `access document: invalid YAML: ${firstLine((e as Error).message)}`,
    );
  }
  if (top === null || top === undefined) throw new InvalidArgumentError('access document: empty');
  if (!isMap(top))
    throw new InvalidArgumentError('access document: the top level must be a mapping');
  onlyKeys('', top, ['server_workloads', 'credential_providers', 'access_policies']);
  const at = (kind: string, i: number) => `${kind}[${i}]`;
  const serverWorkloads = list('server_workloads', top.server_workloads).map((o, i) =>
    workload(at('server_workloads', i), o),
  );
  const credentialProviders = list('credential_providers', top.credential_providers).map((o, i) =>
    provider(at('credential_providers', i), o),
  );
  const accessPolicies = list('access_policies', top.access_policies).map((o, i) =>
    policy(at('access_policies', i), o),
  );
  unique('server_workloads', serverWorkloads);
  unique('credential_providers', credentialProviders);
  unique('access_policies', accessPolicies);
  return { serverWorkloads, credentialProviders, accessPolicies };
}

const firstLine = (s: string): string => (s.split('\n')[0] ?? '').slice(0, 300);
