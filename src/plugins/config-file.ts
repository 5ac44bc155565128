// Reading a YAML config document, shared by both composition roots (server and agent) and by
// plugin configs: size-bounded, a mapping at the top, errors naming the source.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { InvalidArgumentError } from '../core/errors.ts';

export const MAX_CONFIG_BYTES = 1024 * 1024;

export function parseConfigYaml(text: string, source: string): Record<string, unknown> {
  if (text.length > MAX_CONFIG_BYTES)
    throw new InvalidArgumentError(`${source}: config file too large`);
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new InvalidArgumentError(`${source}: invalid YAML: ${(e as Error).message}`);
  }
  if (doc == null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InvalidArgumentError(`${source}: the top level must be a mapping`);
  }
  return doc as Record<string, unknown>;
}

export function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(
      `config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}
