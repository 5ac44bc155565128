// Printers for the two output formats. JSON is the stable, scriptable contract (camelCase keys,
// ISO-8601 times, bytes as PEM or base64); tables are for people and may change.
import { msFromSeconds } from '../wire/time.ts';

export interface Writer {
  write(chunk: string): unknown;
}

export type OutputFormat = 'json' | 'table';
export const outputFormats: readonly OutputFormat[] = ['table', 'json'];

export class Printer {
  readonly format: OutputFormat;
  readonly #out: Writer;
  readonly #err: Writer;

  constructor(out: Writer, err: Writer, format: OutputFormat) {
    this.#out = out;
    this.#err = err;
    this.format = format;
  }

  get json(): boolean {
    return this.format === 'json';
  }

  /** Pretty JSON on stdout; one document per command run. */
  printJson(value: unknown): void {
    this.#out.write(JSON.stringify(value, null, 2) + '\n');
  }

  line(text = ''): void {
    this.#out.write(text + '\n');
  }

  /** Diagnostics and context that must not pollute stdout (which scripts read). */
  note(text: string): void {
    this.#err.write(text + '\n');
  }

  /** Left-aligned columns separated by two spaces; empty cells show as "-". */
  table(headers: readonly string[], rows: readonly (readonly string[])[]): void {
    const cells = [headers, ...rows.map((r) => r.map((c) => (c === '' ? '-' : c)))];
    const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
    for (const r of cells) {
      const padded = r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)));
      this.line(padded.join('  ').trimEnd());
    }
  }

  /** "Key: value" lines for one object, keys aligned. */
  fields(pairs: readonly (readonly [string, string])[]): void {
    const width = Math.max(0, ...pairs.map(([k]) => k.length + 1));
    for (const [k, v] of pairs) this.line(`${(k + ':').padEnd(width)} ${v === '' ? '-' : v}`);
  }
}

/** Unix seconds (wire int64) → ISO-8601, or null for 0 ("never"/"unset"). */
export function isoFromSeconds(s: bigint): string | null {
  return s === 0n ? null : new Date(msFromSeconds(s)).toISOString();
}

/** Unix milliseconds → ISO-8601. */
export function isoFromMillis(ms: bigint): string {
  return new Date(Number(ms)).toISOString();
}

export function orDash(v: string | null | undefined): string {
  return v == null || v === '' ? '-' : v;
}
