// The agent's own identity (agent SVID + key) and the trust bundle, persisted in the data dir so
// a restarted agent reuses them instead of attesting again (a join token works only once).
// Files are 0600 and replaced atomically: key first, so a new certificate never lacks its key.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { derToPem, pemToDers } from '../../crypto/x509/pem.ts';

export interface AgentIdentity {
  readonly spiffeId: string;
  /** Agent SVID chain, leaf first (DER). */
  readonly chainDer: readonly Uint8Array[];
  readonly key: KeyObject;
  readonly notBefore: number;
  readonly expiresAt: number;
  readonly serialHex: string;
}

export function identityFrom(
  spiffeId: string,
  chainDer: readonly Uint8Array[],
  key: KeyObject,
): AgentIdentity {
  const leaf = new X509Certificate(Buffer.from(chainDer[0] ?? new Uint8Array()));
  return {
    spiffeId,
    chainDer,
    key,
    notBefore: Date.parse(leaf.validFrom),
    expiresAt: Date.parse(leaf.validTo),
    serialHex: leaf.serialNumber.toLowerCase(),
  };
}

export function certPem(id: AgentIdentity): string {
  return id.chainDer.map((d) => derToPem(d)).join('');
}

export function keyPem(id: AgentIdentity): string {
  return id.key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

const FILES = { cert: 'agent-svid.pem', key: 'agent-svid.key', bundle: 'bundle.pem' };
/** The files AgentStateDir replaces atomically in the data dir. */
export const AGENT_STATE_FILES: ReadonlySet<string> = new Set(Object.values(FILES));

export class AgentStateDir {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async loadIdentity(): Promise<AgentIdentity | null> {
    const [cert, key] = await Promise.all([this.#read(FILES.cert), this.#read(FILES.key)]);
    if (!cert || !key) return null;
    const chain = pemToDers(cert);
    const leaf = new X509Certificate(Buffer.from(chain[0] ?? new Uint8Array()));
    const uri = /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? '')?.[1];
    const privateKey = createPrivateKey(key);
    if (!uri || !leaf.checkPrivateKey(privateKey)) return null;
    return identityFrom(uri, chain, privateKey);
  }

  async saveIdentity(id: AgentIdentity): Promise<void> {
    await writeFileAtomic(path.join(this.dir, FILES.key), keyPem(id), 0o600);
    await writeFileAtomic(path.join(this.dir, FILES.cert), certPem(id), 0o600);
  }

  async loadBundle(): Promise<Uint8Array[] | null> {
    const pem = await this.#read(FILES.bundle);
    const ders = pem ? pemToDers(pem) : [];
    return ders.length > 0 ? ders : null;
  }

  async saveBundle(caDers: readonly Uint8Array[]): Promise<void> {
    await writeFileAtomic(
      path.join(this.dir, FILES.bundle),
      caDers.map((d) => derToPem(d)).join(''),
      0o600,
    );
  }

  async #read(name: string): Promise<string | null> {
    try {
      return await readFile(path.join(this.dir, name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }
}
