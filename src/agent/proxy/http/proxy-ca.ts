// The Tessera proxy CA (docs/injection.md, "Explicit HTTP proxy"): the explicit proxy terminates
// `CONNECT host:443` to a server workload marked tls_decrypt with a certificate for that host
// issued by this CA, which clients trust because an operator installed it
// (`tessera proxy ca show`). Kept in the agent's data directory:
//   proxy-ca.key  the CA's private key (PKCS#8 PEM), 0600, created on first use
//   proxy-ca.pem  its self-signed certificate, valid 5 years
// and kept across restarts, so clients keep trusting the same CA. A data directory holding one
// of the two files but not the other is refused (naming the file), never silently replaced.
//
// Leaves are issued per hostname, only when the explicit proxy asks — after it found the host to
// be a tls_decrypt server workload and the policy allowed the caller — valid one hour, cached
// until ten minutes before they expire; each has its own key, serverAuth only, SAN = the host.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../../../core/clock.ts';
import { FailedPreconditionError } from '../../../core/errors.ts';
import { writeFileAtomic } from '../../../crypto/keys/atomic-write.ts';
import { exportPkcs8Pem, localKey } from '../../../crypto/keys/local-key.ts';
import type { ManagedKey } from '../../../crypto/key-manager.ts';
import { derToPem, pemToDers } from '../../../crypto/x509/pem.ts';
import { createProxyCa, issueTlsServerCertificate } from '../../../crypto/x509/tls-server.ts';

export const PROXY_CA_KEY_FILE = 'proxy-ca.key';
export const PROXY_CA_CERT_FILE = 'proxy-ca.pem';
/** The files the agent replaces atomically in its data dir for the proxy CA. */
export const PROXY_CA_FILES: ReadonlySet<string> = new Set([PROXY_CA_KEY_FILE, PROXY_CA_CERT_FILE]);

const CA_LIFETIME_MS = 5 * 365 * 24 * 3_600_000;
export const LEAF_LIFETIME_MS = 3_600_000;
const LEAF_RENEW_BEFORE_MS = 10 * 60_000;
const LEAF_BACKDATE_MS = 60_000;
const MAX_CACHED_LEAVES = 1000;

/** A leaf's key and chain (PEM), for a TLS server's options. */
export interface LeafCredentials {
  readonly key: string;
  readonly cert: string;
}

interface Leaf {
  readonly credentials: LeafCredentials;
  readonly notAfter: number;
}

export class ProxyCa {
  readonly certPem: string;
  readonly #certDer: Uint8Array;
  readonly #key: ManagedKey;
  readonly #clock: Clock;
  readonly #leaves = new Map<string, Promise<Leaf>>();

  private constructor(certPem: string, key: ManagedKey, clock: Clock) {
    this.certPem = certPem;
    this.#certDer = pemToDers(certPem)[0]!;
    this.#key = key;
    this.#clock = clock;
  }

  /** Loads the CA from `dataDir`, creating it when neither file exists. */
  static async open(dataDir: string, clock: Clock): Promise<ProxyCa> {
    const keyFile = path.join(dataDir, PROXY_CA_KEY_FILE);
    const certFile = path.join(dataDir, PROXY_CA_CERT_FILE);
    const [keyPem, certPem] = await Promise.all([readIfExists(keyFile), readIfExists(certFile)]);
    if (keyPem === null && certPem === null) return ProxyCa.#create(keyFile, certFile, clock);
    if (keyPem === null || certPem === null) {
      const missing = keyPem === null ? keyFile : certFile;
      throw new FailedPreconditionError(
        `proxy CA: ${missing} is missing while its pair exists: restore it, or remove both files to create a new CA (clients must then trust the new one)`,
      );
    }
    const key = localKey('proxy-ca', createPrivateKey(keyPem));
    const cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
      throw new FailedPreconditionError(`proxy CA: ${keyFile} does not match ${certFile}`);
    }
    return new ProxyCa(certPem, key, clock);
  }

  static async #create(keyFile: string, certFile: string, clock: Clock): Promise<ProxyCa> {
    const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const key = localKey('proxy-ca', privateKey);
    const now = clock.now();
    const ca = await createProxyCa({
      key,
      commonName: 'Tessera proxy CA',
      notBefore: now - LEAF_BACKDATE_MS,
      notAfter: now + CA_LIFETIME_MS,
    });
    const certPem = derToPem(ca.der);
    // The key first: a crash between the two writes leaves a key without a certificate, which
    // open() reports instead of silently minting another CA.
    await writeFileAtomic(keyFile, exportPkcs8Pem(privateKey), 0o600);
    await writeFileAtomic(certFile, certPem, 0o644);
    return new ProxyCa(certPem, key, clock);
  }

  /**
   * A certificate and key for `host` (a DNS name or IP literal). The caller must have checked that
   * `host` is a tls_decrypt server workload and that the policy allows the client.
   */
  async leafFor(host: string): Promise<LeafCredentials> {
    const name = host.toLowerCase();
    const now = this.#clock.now();
    const cached = this.#leaves.get(name);
    if (cached) {
      const leaf = await cached.catch(() => null);
      if (leaf && leaf.notAfter - LEAF_RENEW_BEFORE_MS > now) return leaf.credentials;
      if (this.#leaves.get(name) === cached) this.#leaves.delete(name);
    }
    const pending = this.#issue(name, now);
    if (this.#leaves.size >= MAX_CACHED_LEAVES) {
      this.#leaves.delete(this.#leaves.keys().next().value!);
    }
    this.#leaves.set(name, pending);
    pending.catch(() => this.#leaves.delete(name));
    return (await pending).credentials;
  }

  async #issue(host: string, now: number): Promise<Leaf> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = await issueTlsServerCertificate({
      ca: { certDer: this.#certDer, key: this.#key },
      subjectPublicKey: publicKey,
      host,
      notBefore: now - LEAF_BACKDATE_MS,
      notAfter: now + LEAF_LIFETIME_MS,
    });
    const credentials = {
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: derToPem(leaf.der) + this.certPem,
    };
    return { credentials, notAfter: leaf.notAfter };
  }
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new FailedPreconditionError(`proxy CA: cannot read ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
