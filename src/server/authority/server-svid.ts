// The server's own X.509-SVID (spiffe://<td>/spire/server) for its TLS listener. Its key lives
// only in memory; it is re-minted at half-life and whenever the active X.509 authority changes.
import { generateKeyPairSync } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { derToPem } from '../../crypto/x509/pem.ts';
import type { Minter } from '../svid/minter.ts';

export interface TlsMaterial {
  readonly keyPem: string;
  readonly certPem: string;
}

export class ServerSvid {
  readonly #minter: Minter;
  readonly #clock: Clock;
  readonly #spiffeId: string;
  readonly #ttlMs: number;
  #material: TlsMaterial | null = null;
  #renewAt = 0;
  readonly #listeners = new Set<(m: TlsMaterial) => void>();

  constructor(o: { minter: Minter; clock: Clock; spiffeId: string; ttlMs: number }) {
    this.#minter = o.minter;
    this.#clock = o.clock;
    this.#spiffeId = o.spiffeId;
    this.#ttlMs = o.ttlMs;
  }

  /** The material, or null while none could be minted (the X.509 authority's key is missing). */
  get current(): TlsMaterial | null {
    return this.#material;
  }

  onChange(fn: (m: TlsMaterial) => void): void {
    this.#listeners.add(fn);
  }

  /** Mints when forced, missing, or past half-life. */
  async refresh(force = false): Promise<void> {
    const now = this.#clock.now();
    if (!force && this.#material && now < this.#renewAt) return;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const svid = await this.#minter.x509(this.#spiffeId, publicKey, this.#ttlMs, []);
    this.#renewAt = now + (svid.expiresAt - now) / 2;
    this.#material = {
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      certPem: svid.chainDer.map((d) => derToPem(d, 'CERTIFICATE')).join(''),
    };
    for (const fn of this.#listeners) fn(this.#material);
  }
}
