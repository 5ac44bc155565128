// Test support (imported only by *.test.ts): a real gRPC SpiffeWorkloadAPI server on an h2c
// HTTP/2 server bound to a Unix socket, serving SVIDs minted by the test. It can push rotations,
// end streams, fail calls with a gRPC code, and be stopped and restarted on the same socket.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ManagedKey } from '../../../crypto/key-manager.ts';
import { MemoryKeyManager } from '../../../crypto/keys/memory-key-manager.ts';
import { signJwtSvid } from '../../../crypto/jwt/sign.ts';
import { publicJwk } from '../../../crypto/jwk.ts';
import { createSelfSignedCa } from '../../../crypto/x509/ca.ts';
import { issueX509Svid } from '../../../crypto/x509/leaf.ts';
import {
  SpiffeWorkloadAPI,
  type X509SVIDResponseSchema,
} from '../../../../proto/gen/spiffe/workload_pb.js';
import { SECURITY_HEADER } from '../workload-client.ts';

export type X509Init = MessageInitShape<typeof X509SVIDResponseSchema>;
type Method = 'x509' | 'x509Bundles' | 'jwt' | 'jwtBundles' | 'validate';

export interface TestAuthority {
  readonly trustDomain: string;
  readonly caDer: Uint8Array;
  readonly caKey: ManagedKey;
  readonly jwtKey: ManagedKey;
  readonly kid: string;
}

export async function makeAuthority(trustDomain: string, now = Date.now()): Promise<TestAuthority> {
  const km = new MemoryKeyManager();
  const caKey = await km.generate('ca', 'ec-p256');
  const ca = await createSelfSignedCa({
    key: caKey,
    trustDomain,
    notBefore: now - 3_600_000,
    notAfter: now + 24 * 3_600_000,
  });
  const jwtKey = await km.generate('jwt', 'ec-p256');
  return { trustDomain, caDer: ca.der, caKey, jwtKey, kid: `kid-${trustDomain}` };
}

export interface MintedSvid {
  readonly spiffeId: string;
  readonly chainDer: Uint8Array;
  readonly key: KeyObject;
  readonly pkcs8: Uint8Array;
}

export async function mintSvid(
  a: TestAuthority,
  spiffeId: string,
  o: { now?: number; ttlMs?: number } = {},
): Promise<MintedSvid> {
  const now = o.now ?? Date.now();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = await issueX509Svid({
    ca: { certDer: a.caDer, key: a.caKey },
    subjectPublicKey: publicKey,
    spiffeId,
    notBefore: now - 10_000,
    notAfter: now + (o.ttlMs ?? 3_600_000),
  });
  const pkcs8 = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  return { spiffeId, chainDer: leaf.der, key: privateKey, pkcs8 };
}

export function svidMessage(
  a: TestAuthority,
  s: MintedSvid,
  hint = '',
): NonNullable<X509Init['svids']> {
  return [
    { spiffeId: s.spiffeId, x509Svid: s.chainDer, x509SvidKey: s.pkcs8, bundle: a.caDer, hint },
  ];
}

export function jwksOf(...as: TestAuthority[]): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const a of as) {
    const keys = [{ ...publicJwk(a.jwtKey.publicKey), kid: a.kid }];
    out[`spiffe://${a.trustDomain}`] = new Uint8Array(Buffer.from(JSON.stringify({ keys })));
  }
  return out;
}

export async function mintJwt(
  a: TestAuthority,
  sub: string,
  aud: string[],
  o: { now?: number; ttlS?: number; kid?: string } = {},
): Promise<string> {
  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  return signJwtSvid({
    key: a.jwtKey,
    kid: o.kid ?? a.kid,
    claims: { sub, aud, iat, exp: iat + (o.ttlS ?? 300) },
  });
}

export class FakeWorkloadApi {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'tessera-wl-'));
  readonly socketPath = path.join(this.dir, 'agent.sock');
  readonly headers: Array<string | undefined> = [];
  readonly calls: Method[] = [];
  /** Calls of a method fail with this code while count > 0. */
  readonly failures = new Map<Method, { code: Code; count: number }>();
  x509: X509Init = { svids: [] };
  x509Bundles: Record<string, Uint8Array> = {};
  jwtBundles: Record<string, Uint8Array> = {};
  /** Answers FetchJWTSVID. */
  mintJwt: (
    audience: string[],
    spiffeId: string,
  ) => Promise<Array<{ spiffeId: string; svid: string }>> = async () => [];
  #version = 0;
  #waiters = new Set<(drop: boolean) => void>();
  #server: http2.Http2Server | undefined;
  #sessions = new Set<http2.ServerHttp2Session>();

  get uri(): string {
    return `unix://${this.socketPath}`;
  }

  async start(): Promise<void> {
    const server = http2.createServer(
      connectNodeAdapter({ routes: (r) => r.service(SpiffeWorkloadAPI, this.#impl()) }),
    );
    server.on('session', (s) => {
      this.#sessions.add(s);
      s.on('close', () => this.#sessions.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.#server = server;
  }

  /** Stops listening and kills every connection (the socket file is removed). */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    this.#notify(true);
    for (const s of this.#sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Sends the current state to every open stream (a rotation). */
  push(): void {
    this.#version++;
    this.#notify(false);
  }

  /** Ends every open stream normally (clients should reconnect). */
  dropStreams(): void {
    this.#notify(true);
  }

  #notify(drop: boolean): void {
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) w(drop);
  }

  #wait(signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const w = (drop: boolean): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(drop);
      };
      const onAbort = (): void => {
        this.#waiters.delete(w);
        resolve(true);
      };
      this.#waiters.add(w);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #check(m: Method, ctx: HandlerContext): void {
    this.calls.push(m);
    this.headers.push(ctx.requestHeader.get(SECURITY_HEADER) ?? undefined);
    if (ctx.requestHeader.get(SECURITY_HEADER) !== 'true') {
      throw new ConnectError('security header missing from request', Code.InvalidArgument);
    }
    const f = this.failures.get(m);
    if (f && f.count > 0) {
      f.count--;
      throw new ConnectError(`injected ${Code[f.code]}`, f.code);
    }
  }

  async *#stream<T>(m: Method, ctx: HandlerContext, current: () => T): AsyncGenerator<T> {
    this.#check(m, ctx);
    let seen = -1;
    for (let i = 0; i < 10_000 && !ctx.signal.aborted; i++) {
      if (seen !== this.#version) {
        seen = this.#version;
        yield current();
      }
      if (await this.#wait(ctx.signal)) return;
    }
  }

  #impl() {
    return {
      fetchX509SVID: (_req: unknown, ctx: HandlerContext) =>
        this.#stream('x509', ctx, () => this.x509),
      fetchX509Bundles: (_req: unknown, ctx: HandlerContext) =>
        this.#stream('x509Bundles', ctx, () => ({ bundles: this.x509Bundles })),
      fetchJWTBundles: (_req: unknown, ctx: HandlerContext) =>
        this.#stream('jwtBundles', ctx, () => ({ bundles: this.jwtBundles })),
      fetchJWTSVID: async (req: { audience: string[]; spiffeId: string }, ctx: HandlerContext) => {
        this.#check('jwt', ctx);
        if (req.audience.length === 0)
          throw new ConnectError('audience required', Code.InvalidArgument);
        return { svids: await this.mintJwt(req.audience, req.spiffeId) };
      },
      validateJWTSVID: async (req: { audience: string; svid: string }, ctx: HandlerContext) => {
        this.#check('validate', ctx);
        const payload = JSON.parse(
          Buffer.from(req.svid.split('.')[1] ?? '', 'base64url').toString(),
        ) as {
          sub: string;
          aud: string[];
        };
        if (!payload.aud.includes(req.audience))
          throw new ConnectError('bad audience', Code.InvalidArgument);
        return { spiffeId: payload.sub, claims: { sub: payload.sub, aud: payload.aud } };
      },
      fetchWITSVID: () => {
        throw new ConnectError('WIT-SVIDs are not supported', Code.Unimplemented);
      },
      fetchWITBundles: () => {
        throw new ConnectError('WIT-SVIDs are not supported', Code.Unimplemented);
      },
    };
  }
}
