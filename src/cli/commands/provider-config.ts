// A credential provider's config from the command line: `--config FILE` (YAML or JSON, a
// mapping) or repeatable `--set key=value`, dotted keys making nested maps. `--set` values stay
// strings except `true`/`false` and integers; anything richer (lists) goes in a file. The server
// validates the result against the type's schema.
import { parse as parseYaml } from 'yaml';
import { InvalidArgumentError } from '../../core/errors.ts';
import { readInputText } from '../bounded-read.ts';

export const MAX_CONFIG_FILE_BYTES = 256 * 1024;
const MAX_SETS = 256;
const KEY = /^[A-Za-z0-9_-]{1,128}$/;
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

type Json = string | number | boolean | JsonMap;
interface JsonMap {
  [k: string]: Json;
}

function scalar(v: string): Json {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^-?(0|[1-9]\d{0,15})$/.test(v) && Number.isSafeInteger(Number(v))) return Number(v);
  return v;
}

/** `--set a.b=c ...` → { a: { b: "c" } }; conflicting or malformed keys are refused. */
export function configFromSets(sets: readonly string[]): JsonMap {
  if (sets.length > MAX_SETS) throw new InvalidArgumentError(`--set: at most ${MAX_SETS} values`);
  const out: JsonMap = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--set: "${s.slice(0, 64)}" is not key=value`);
    const key = s.slice(0, eq);
    const path = key.split('.');
    if (!path.every((p) => KEY.test(p) && !FORBIDDEN.has(p)))
      throw new InvalidArgumentError(
        `--set: "${key.slice(0, 64)}" is not a key (letters, digits, "_", "-", dotted for nesting)`,
      );
    let node = out;
    for (const [i, part] of path.entries()) {
      const last = i === path.length - 1;
      const cur = Object.hasOwn(node, part) ? node[part] : undefined;
      if (last) {
        if (cur !== undefined) throw new InvalidArgumentError(`--set: "${key}" is set twice`);
        node[part] = scalar(s.slice(eq + 1));
      } else if (cur === undefined) {
        const child: JsonMap = {};
        node[part] = child;
        node = child;
      } else if (typeof cur === 'object') {
        node = cur;
      } else {
        throw new InvalidArgumentError(
          `--set: "${key}" conflicts with "${path.slice(0, i + 1).join('.')}" set to a value`,
        );
      }
    }
  }
  return out;
}

/** The mapping in a YAML or JSON file (bounded; "-" = standard input). */
export async function configFromFile(file: string): Promise<Record<string, unknown>> {
  const text = await readInputText(file, '--config', MAX_CONFIG_FILE_BYTES);
  let v: unknown;
  try {
    v = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    const first = ((e as Error).message.split('\n')[0] ?? '').slice(0, 200);
    throw new InvalidArgumentError(`--config: ${file} is not valid YAML or JSON: ${first}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new InvalidArgumentError(`--config: ${file} must hold a mapping of config keys`);
  return v as Record<string, unknown>;
}
