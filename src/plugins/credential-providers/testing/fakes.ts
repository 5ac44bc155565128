// Test doubles for the ports a credential provider receives: an in-memory secret reader (the
// real secret store belongs to the broker), minting that signs real JWTs with a jose key, and a
// request builder. Real implementations, not mocks.
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { AccessClient, ServerWorkload } from '../../../core/access.ts';
import { NotFoundError } from '../../../core/errors.ts';
import type {
  CredentialMinting,
  CredentialProviderDeps,
  CredentialRequest,
  LeasePort,
  SecretReader,
} from '../credential-provider.ts';

export class MemorySecrets implements SecretReader {
  readonly #values = new Map<string, Uint8Array>();
  reads = 0;
  set(name: string, value: string | Uint8Array): this {
    this.#values.set(name, typeof value === 'string' ? new TextEncoder().encode(value) : value);
    return this;
  }
  delete(name: string): void {
    this.#values.delete(name);
  }
  async read(name: string): Promise<Uint8Array> {
    this.reads++;
    const v = this.#values.get(name);
    if (v === undefined) throw new NotFoundError(`secret "${name}" not found`);
    return v;
  }
}

export interface JoseMinting extends CredentialMinting {
  readonly publicKey: CryptoKey;
  readonly issuer: string;
}

/** Signs JWT-SVIDs and access tokens with one ES256 key, as the server's minter would. */
export async function joseMinting(now: () => number): Promise<JoseMinting> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const issuer = 'https://tessera.test';
  const sign = async (claims: Record<string, unknown>, typ: string, ttl: number) => {
    const iat = Math.floor(now() / 1000);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ })
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .sign(privateKey);
    return { token, expiresAt: (iat + ttl) * 1000 };
  };
  return {
    publicKey,
    issuer,
    jwtSvid: (spiffeId, audience, ttl) => sign({ sub: spiffeId, aud: [...audience] }, 'JWT', ttl),
    accessToken: (spiffeId, audience, scopes, ttl) =>
      sign(
        { iss: issuer, sub: spiffeId, aud: audience, client_id: spiffeId, scope: scopes.join(' ') },
        'at+jwt',
        ttl,
      ),
  };
}

/** A LeasePort that only remembers (providers that keep no leases never call it). */
export class MemoryLeases implements LeasePort {
  readonly recorded: Parameters<LeasePort['record']>[0][] = [];
  readonly active = new Set<string>();
  async record(lease: Parameters<LeasePort['record']>[0]): Promise<void> {
    this.recorded.push(lease);
  }
  async activate(id: string): Promise<boolean> {
    this.active.add(id);
    return true;
  }
}

export const testClient: AccessClient = {
  spiffeId: 'spiffe://example.org/ns/prod/sa/web',
  selectors: [{ type: 'unix', value: 'uid:1000' }],
  attributes: {},
};

export const testServer: ServerWorkload = {
  name: 'orders-api',
  host: 'orders.internal',
  port: 8443,
  protocol: 'https',
  pathPrefix: '',
  present: 'authorization-bearer',
  tls: true,
  tlsCa: '',
  tlsDecrypt: false,
  createdAt: 0,
  updatedAt: 0,
};

export function request(over: Partial<CredentialRequest> = {}): CredentialRequest {
  return {
    client: testClient,
    server: testServer,
    policy: 'web-to-orders',
    agent: 'spiffe://example.org/spire/agent/join_token/a1',
    correlationId: 'corr-1',
    ...over,
  };
}

export function deps(over: Partial<CredentialProviderDeps> = {}): CredentialProviderDeps {
  const unusedMinting: CredentialMinting = {
    jwtSvid: () => Promise.reject(new Error('minting not expected')),
    accessToken: () => Promise.reject(new Error('minting not expected')),
  };
  return {
    secrets: new MemorySecrets(),
    minting: unusedMinting,
    leases: new MemoryLeases(),
    now: () => Date.now(),
    fetch: globalThis.fetch,
    ...over,
  };
}

export function record(type: string, config: Record<string, unknown>, name = 'p1') {
  return { name, type, config, createdAt: 0, updatedAt: 0 };
}
