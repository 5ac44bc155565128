// Reads untrusted scanner JSON by path: every accessor names where it is in the document
// ("Results[2].Vulnerabilities[0].Severity"), so a malformed report is refused with the exact
// place that is wrong, never a TypeError from deep inside a parser.
import { InvalidArgumentError } from '../../../core/errors.ts';

export class JsonAt {
  readonly value: unknown;
  readonly path: string;

  constructor(value: unknown, path: string) {
    this.value = value;
    this.path = path;
  }

  fail(message: string): never {
    throw new InvalidArgumentError(`report: ${this.path || '(top level)'}: ${message}`);
  }

  #child(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  object(): Record<string, unknown> {
    const v = this.value;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail('must be an object');
    return v as Record<string, unknown>;
  }

  /** The member `key`; absent members read as undefined. */
  get(key: string): JsonAt {
    const o = this.object();
    return new JsonAt(Object.hasOwn(o, key) ? o[key] : undefined, this.#child(key));
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  /** The elements of an array; absent or null reads as []. */
  items(): JsonAt[] {
    if (!this.present) return [];
    if (!Array.isArray(this.value)) this.fail('must be an array');
    return this.value.map((v, i) => new JsonAt(v, `${this.path}[${i}]`));
  }

  /** A string, or `fallback` when absent. */
  string(fallback = ''): string {
    if (!this.present) return fallback;
    if (typeof this.value !== 'string') this.fail('must be a string');
    return this.value;
  }

  /** A required string. */
  requiredString(): string {
    if (!this.present) this.fail('is required');
    return this.string();
  }

  strings(): string[] {
    return this.items().map((i) => i.string());
  }
}

/** Parses a report's bytes as JSON; errors say it is not JSON (with the parser's position). */
export function parseReportJson(bytes: Uint8Array): JsonAt {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidArgumentError('report: not UTF-8 text');
  }
  try {
    return new JsonAt(JSON.parse(text), '');
  } catch (e) {
    throw new InvalidArgumentError(`report: not JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

/** An RFC 3339 time at `at`, as epoch ms; absent → null. */
export function timeAt(at: JsonAt): number | null {
  const s = at.string();
  if (s === '') return null;
  const ms = Date.parse(s);
  if (!Number.isFinite(ms)) at.fail(`"${s.slice(0, 40)}" is not an RFC 3339 time`);
  return ms;
}
