// A small WHATWG `Headers` for the CLI snapshot, put in place of the global by the build
// (esbuild `inject`; the global is untouched). Node's own Headers lives in undici, whose first
// use loads and compiles all of it (~40–70 ms of CPU here, more than a whole `node -e 0`) and
// cannot be kept in a V8 startup snapshot. The Connect client only builds, reads and copies
// request and response headers, which this covers: names are case-insensitive, repeated values
// are joined with ", ", and iteration is in sorted name order, as the standard says.
type Init = Iterable<readonly [string, string]> | Record<string, string> | undefined | null;

class Headers {
  readonly #map = new Map<string, string>();

  constructor(init?: Init) {
    if (init == null) return;
    if (Symbol.iterator in init) {
      for (const [name, value] of init as Iterable<readonly [string, string]>)
        this.append(name, value);
    } else {
      for (const [name, value] of Object.entries(init)) this.append(name, value);
    }
  }

  append(name: string, value: string): void {
    const key = String(name).toLowerCase();
    const v = String(value).trim();
    const old = this.#map.get(key);
    this.#map.set(key, old === undefined ? v : `${old}, ${v}`);
  }

  set(name: string, value: string): void {
    this.#map.set(String(name).toLowerCase(), String(value).trim());
  }

  get(name: string): string | null {
    return this.#map.get(String(name).toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.#map.has(String(name).toLowerCase());
  }

  delete(name: string): void {
    this.#map.delete(String(name).toLowerCase());
  }

  getSetCookie(): string[] {
    const v = this.#map.get('set-cookie');
    return v === undefined ? [] : [v];
  }

  forEach(fn: (value: string, name: string, headers: Headers) => void, self?: unknown): void {
    for (const [name, value] of this) fn.call(self, value, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    yield* [...this.#map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

export { Headers };
