// Server workloads, credential providers and access policies as the CLI shows them: the stable
// JSON shapes (docs/cli.md) and the table rows.
import type { Command } from 'commander';
import type { AccessPolicy, CredentialProvider, ServerWorkload } from '../../client/api/access.ts';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import {
  accessPolicyFromWire,
  credentialProviderFromWire,
  serverWorkloadFromWire,
} from '../../wire/access.ts';
import { isoFromMillis } from '../output.ts';
import type { AdminContext } from '../context.ts';

export function serverWorkloadJson(w: ServerWorkload) {
  return {
    ...serverWorkloadFromWire(w),
    createdAt: isoFromMillis(w.createdAt),
    updatedAt: isoFromMillis(w.updatedAt),
  };
}

/** `show` as text: the CA summarised (its PEM is in `--output json`). */
export function serverWorkloadText(w: ServerWorkload) {
  const n = (w.tlsCa.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
  return { ...serverWorkloadJson(w), tlsCa: n === 0 ? '' : `${n} PEM certificate(s)` };
}

export const serverWorkloadHeaders = [
  'NAME',
  'PROTOCOL',
  'HOST',
  'PORT',
  'PATH PREFIX',
  'PRESENT',
  'TLS',
];

/** `no`, `yes`, `yes (own CA)`, with `, decrypt` when the explicit proxy terminates it. */
function tlsCell(w: ServerWorkload): string {
  const tls = w.tls ? (w.tlsCa !== '' ? 'yes (own CA)' : 'yes') : 'no';
  return w.tlsDecrypt ? `${tls}, decrypt` : tls;
}

export const serverWorkloadRow = (w: ServerWorkload): string[] => [
  w.name,
  w.protocol,
  w.host,
  w.port === 0 ? '' : String(w.port),
  w.pathPrefix,
  w.present,
  tlsCell(w),
];

export function credentialProviderJson(p: CredentialProvider) {
  return {
    ...credentialProviderFromWire(p),
    createdAt: isoFromMillis(p.createdAt),
    updatedAt: isoFromMillis(p.updatedAt),
  };
}

export const credentialProviderHeaders = ['NAME', 'TYPE', 'CREATED'];

export const credentialProviderRow = (p: CredentialProvider): string[] => [
  p.name,
  p.type,
  isoFromMillis(p.createdAt),
];

export function accessPolicyJson(p: AccessPolicy) {
  const { name, deny, ...rest } = accessPolicyFromWire(p);
  return {
    name,
    effect: deny ? 'deny' : 'allow',
    ...rest,
    createdAt: isoFromMillis(p.createdAt),
    updatedAt: isoFromMillis(p.updatedAt),
  };
}

export const accessPolicyHeaders = ['NAME', 'EFFECT', 'CLIENT', 'SERVER', 'PROVIDER', 'CONDITION'];

export const accessPolicyRow = (p: AccessPolicy): string[] => [
  p.name,
  p.deny ? 'deny' : 'allow',
  p.client,
  p.server,
  p.credentialProvider,
  p.condition,
];

/** Prints one object as JSON or "Key: value" lines. */
export function printOne<T>(
  ctx: AdminContext<object>,
  v: T | undefined,
  what: string,
  json: (v: T) => Record<string, unknown>,
): void {
  if (!v) throw new TesseraError('internal', `the server returned no ${what}`);
  const j = json(v);
  if (ctx.out.json) {
    ctx.out.printJson(j);
    return;
  }
  ctx.out.fields(
    Object.entries(j).map(([k, val]) => [k, typeof val === 'string' ? val : JSON.stringify(val)]),
  );
}

/** `show NAME` / `delete NAME`: the name as the argument or --name (both: they must agree). */
export function withNameArg(cmd: Command, what: string): Command {
  return cmd.argument('[name]', `${what} name (or --name)`).option('--name <name>', `${what} name`);
}

export function nameFrom(cmd: Command, opts: { name?: string }, usage: string): string {
  const [arg] = cmd.args;
  if (arg !== undefined && opts.name !== undefined && arg !== opts.name)
    throw new InvalidArgumentError(`two different names: ${arg} and --name ${opts.name}`);
  const name = arg ?? opts.name;
  if (name === undefined) throw new InvalidArgumentError(`give the name: ${usage}`);
  return name;
}
