// The servers an agent may talk to: the configured addresses, each name expanded to every address
// it resolves to (a DNS name with several A/AAAA records is several servers). One is current; a
// call that finds it unreachable moves on to the next, and a full round resolves the names again.
// Servers of one trust domain share a database, so the agent SVID and the bundle are valid with
// every one of them: moving needs no new attestation. (Connecting by IP address is fine: the
// server is authenticated by its SPIFFE ID, never by host name.)
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** A host name's addresses (IPv4 or IPv6 literals). */
export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) =>
  (await dnsLookup(host, { all: true })).map((a) => a.address);

/** HOST:PORT list with every name replaced by its addresses, in order, without duplicates. */
export async function expandAddresses(
  configured: readonly string[],
  lookup: Lookup,
): Promise<string[]> {
  const out: string[] = [];
  for (const address of configured) {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon);
    const port = address.slice(colon + 1);
    if (isIP(host.replace(/^\[(.*)\]$/, '$1')) !== 0) {
      out.push(address);
      continue;
    }
    // A name that does not resolve now stays as it is: connecting to it says why.
    const ips = await lookup(host).catch(() => []);
    if (ips.length === 0) out.push(address);
    for (const ip of ips) out.push(isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);
  }
  return [...new Set(out)];
}

export class ServerEndpoints {
  readonly #configured: readonly string[];
  readonly #lookup: Lookup;
  #list: string[];
  #index = 0;

  constructor(configured: readonly string[], lookup: Lookup = systemLookup) {
    if (configured.length === 0) throw new TypeError('at least one server address');
    this.#configured = configured;
    this.#lookup = lookup;
    this.#list = [...configured];
  }

  get current(): string {
    return this.#list[this.#index] ?? (this.#list[0] as string);
  }

  get all(): readonly string[] {
    return this.#list;
  }

  /** Resolves the configured names again; the current address stays current if still listed. */
  async resolve(): Promise<void> {
    const current = this.current;
    const next = await expandAddresses(this.#configured, this.#lookup);
    this.#list = next;
    this.#index = Math.max(0, next.indexOf(current));
  }

  /**
   * `failed` did not answer: when it is the current one, the next becomes current (returned);
   * null when there is no other. After a full round the names are resolved again.
   */
  advance(failed: string): string | null {
    if (failed !== this.current || this.#list.length < 2) return null;
    this.#index = (this.#index + 1) % this.#list.length;
    if (this.#index === 0) void this.resolve().catch(() => {});
    return this.current;
  }
}
