// Built-in workload attestors (agent side), listed explicitly: no discovery. Each entry is a
// config schema and a factory; createWorkloadAttestors validates each configured attestor's config
// with its schema (errors name the key path) and builds it.
import type { z } from 'zod';
import { InvalidArgumentError } from '../../core/errors.ts';
import { createDockerAttestor, dockerConfigSchema } from './docker/attestor.ts';
import { createK8sAttestor, k8sConfigSchema } from './k8s/attestor.ts';
import { createUnixAttestor, unixConfigSchema } from './unix/attestor.ts';
import type { WorkloadAttestor } from './workload-attestor.ts';

export type { WorkloadAttestor } from './workload-attestor.ts';
export { createUnixAttestor, unixConfigSchema, UNIX_TYPE } from './unix/attestor.ts';
export type { UnixConfig } from './unix/attestor.ts';
export { createDockerAttestor, dockerConfigSchema, DOCKER_TYPE } from './docker/attestor.ts';
export type { DockerConfig } from './docker/attestor.ts';
export { createK8sAttestor, k8sConfigSchema, K8S_TYPE } from './k8s/attestor.ts';
export type { K8sConfig } from './k8s/attestor.ts';

/** What the composition root hands every workload attestor. */
export interface WorkloadAttestorDeps {
  /** Root of the proc filesystem (default /proc); tests point it at a fake tree. */
  readonly procRoot?: string;
  /** Clock in ms since the epoch (default Date.now), for caches. */
  readonly now?: () => number;
  /** The agent's environment (e.g. NODE_NAME for k8s); plugins never read process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

interface CatalogEntry {
  readonly schema: z.ZodType;
  build(config: unknown, deps: WorkloadAttestorDeps): WorkloadAttestor;
}

function entry<S extends z.ZodType>(
  schema: S,
  create: (config: z.output<S>, deps: WorkloadAttestorDeps) => WorkloadAttestor,
): CatalogEntry {
  return { schema, build: (config, deps) => create(config as z.output<S>, deps) };
}

export const builtinWorkloadAttestors: Readonly<Record<string, CatalogEntry>> = Object.freeze({
  unix: entry(unixConfigSchema, createUnixAttestor),
  docker: entry(dockerConfigSchema, createDockerAttestor),
  k8s: entry(k8sConfigSchema, createK8sAttestor),
});

const KEY = 'workload_attestors';

/**
 * Builds the configured attestors, in config order. `config` maps attestor type → its config; a
 * null/undefined config (a bare `unix:` in YAML) means all defaults. Throws InvalidArgumentError
 * naming the key path, e.g. `config: workload_attestors.docker.env_keys: ...`.
 */
export function createWorkloadAttestors(
  config: Readonly<Record<string, unknown>>,
  deps: WorkloadAttestorDeps,
): WorkloadAttestor[] {
  const out: WorkloadAttestor[] = [];
  for (const [type, raw] of Object.entries(config)) {
    const builtin = Object.hasOwn(builtinWorkloadAttestors, type)
      ? builtinWorkloadAttestors[type]
      : undefined;
    if (!builtin) {
      const known = Object.keys(builtinWorkloadAttestors).join(', ');
      throw new InvalidArgumentError(
        `config: ${KEY}: unknown workload attestor "${type}" (built-in: ${known})`,
      );
    }
    const parsed = builtin.schema.safeParse(raw ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = [KEY, type, ...(issue?.path ?? []).map(String)].join('.');
      const message =
        issue?.code === 'unrecognized_keys'
          ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`
          : (issue?.message ?? 'invalid');
      throw new InvalidArgumentError(`config: ${where}: ${message}`);
    }
    try {
      out.push(builtin.build(parsed.data, deps));
    } catch (e) {
      if (e instanceof InvalidArgumentError) {
        const message = e.message.startsWith(`${type}: `)
          ? e.message.slice(type.length + 2)
          : e.message;
        throw new InvalidArgumentError(`config: ${KEY}.${type}: ${message}`, { cause: e });
      }
      throw e;
    }
  }
  return out;
}
