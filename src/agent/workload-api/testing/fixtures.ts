// Test support (imported only by *.test.ts): real PKI for two trust domains, a running Workload
// API on a temp socket, and a grpc-js client built only from proto/spiffe/workload.proto by
// @grpc/proto-loader — an independent implementation, as real SPIFFE clients are.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { publicJwk } from '../../../crypto/jwk.ts';
import { MemoryKeyManager } from '../../../crypto/keys/memory-key-manager.ts';
import { issueX509Svid } from '../../../crypto/x509/leaf.ts';
import { makeCa, type TestCa } from '../../../crypto/x509/testing/ca.ts';
import {
  AttestationService,
  type AttestationServiceOptions,
} from '../../attestation/attestation-service.ts';
import type { X509SvidItem } from '../identity-source.ts';
import { startWorkloadApi, type WorkloadApi, type WorkloadApiOptions } from '../server.ts';
import { StaticIdentitySource, type StaticEntry } from '../static-identity-source.ts';

export const TD = 'spiffe://example.org';
export const FED_TD = 'spiffe://other.org';
export const REPO = path.resolve(import.meta.dirname, '../../../..');
const HOUR = 3_600_000;

export interface Pki {
  readonly ca: TestCa;
  readonly ca2: TestCa;
  readonly fedCa: TestCa;
  readonly jwks: string;
  readonly fedJwks: string;
  readonly source: StaticIdentitySource;
  svid(spiffeId: string, entryId: string, hint?: string): Promise<X509SvidItem>;
}

/** Two own CAs (a rotation in progress), one federated CA, JWT keys for both domains. */
export async function makePki(
  entries: (pki: Omit<Pki, 'source'>) => Promise<StaticEntry[]>,
): Promise<Pki> {
  const now = Date.now();
  const [ca, ca2, fedCa] = await Promise.all([
    makeCa('ec-p256', 'example.org', now),
    makeCa('ec-p256', 'example.org', now),
    makeCa('ec-p256', 'other.org', now),
  ]);
  const jwtKey = await new MemoryKeyManager().generate('jwt', 'ec-p256');
  const fedJwtKey = await new MemoryKeyManager().generate('jwt', 'ec-p256');
  const jwks = JSON.stringify({ keys: [{ ...publicJwk(jwtKey.publicKey), kid: 'k1' }] });
  const fedJwks = JSON.stringify({ keys: [{ ...publicJwk(fedJwtKey.publicKey), kid: 'f1' }] });
  const svid = async (spiffeId: string, entryId: string, hint = ''): Promise<X509SvidItem> => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = await issueX509Svid({
      ca,
      subjectPublicKey: publicKey,
      spiffeId,
      notBefore: now - 10_000,
      notAfter: now + HOUR,
    });
    return {
      spiffeId,
      chainDer: [leaf.der],
      keyPkcs8Der: new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' })),
      hint,
      entryId,
      expiresAt: now + HOUR,
    };
  };
  const base = { ca, ca2, fedCa, jwks, fedJwks, svid };
  const source = new StaticIdentitySource(
    {
      trustDomainId: TD,
      bundle: [ca.certDer, ca2.certDer],
      entries: await entries(base),
      federatedBundles: new Map([[FED_TD, [fedCa.certDer]]]),
      jwtBundles: new Map([
        [TD, jwks],
        [FED_TD, fedJwks],
      ]),
    },
    { key: jwtKey, kid: 'k1' },
  );
  return { ...base, source };
}

export interface Running {
  readonly dir: string;
  readonly socketPath: string;
  readonly api: WorkloadApi;
  stop(): Promise<void>;
}

/** Starts the server on a socket in a fresh temp dir (0755: other uids must reach the socket). */
export async function startOnTempSocket(
  source: StaticIdentitySource,
  extra: Partial<WorkloadApiOptions> = {},
): Promise<Running> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-wl-'));
  chmodSync(dir, 0o755);
  const socketPath = path.join(dir, 'sock', 'agent.sock');
  const attestation = staticAttestation(source);
  // TESSERA_TEST_CONNECT_ONLY=1 runs the same tests with every call served by connect-node
  // (no gRPC fast paths), so both paths are held to the same answers.
  const fastPaths = process.env['TESSERA_TEST_CONNECT_ONLY'] !== '1';
  const api = await startWorkloadApi({ socketPath, source, attestation, fastPaths, ...extra });
  return {
    dir,
    socketPath,
    api,
    async stop() {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The real attestation service over a static source's selectors. Entries are matched by the
 * static source's view itself (by selector), so the service's matcher has none of its own.
 */
export function staticAttestation(
  source: StaticIdentitySource,
  o: Partial<AttestationServiceOptions> = {},
): AttestationService {
  return new AttestationService({ selectors: source, entries: { match: () => [] }, ...o });
}

// --- the independent gRPC client -------------------------------------------------------------

const loaderOptions = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export function loadService(protoFile: string, name: string): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(path.join(REPO, protoFile), loaderOptions);
  let obj: unknown = grpc.loadPackageDefinition(def);
  for (const part of name.split('.')) obj = (obj as Record<string, unknown>)[part];
  return obj as grpc.ServiceClientConstructor;
}

export type GrpcClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function workloadClient(socketPath: string): GrpcClient {
  const Ctor = loadService('proto/spiffe/workload.proto', 'SpiffeWorkloadAPI');
  return new Ctor(`unix://${socketPath}`, grpc.credentials.createInsecure()) as GrpcClient;
}

export function securityHeader(value: string | string[] = 'true'): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const v of Array.isArray(value) ? value : [value]) md.add('workload.spiffe.io', v);
  return md;
}

export function unary<T>(
  client: GrpcClient,
  method: string,
  req: unknown,
  md = securityHeader(),
): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = client[method] as (
      r: unknown,
      m: grpc.Metadata,
      cb: (e: Error | null, v: T) => void,
    ) => void;
    fn.call(client, req, md, (e, v) => (e ? reject(e) : resolve(v)));
  });
}

/** A server stream as a pull queue: next() waits (bounded) for the next message or error. */
export interface StreamReader<T> {
  readonly call: grpc.ClientReadableStream<T>;
  next(timeoutMs?: number): Promise<T>;
  /** Resolves with the status error (or null for OK) once the stream ends. */
  readonly ended: Promise<grpc.ServiceError | null>;
  /** Messages received so far and not taken by next(). */
  readonly buffered: T[];
}

export function openStream<T>(
  client: GrpcClient,
  method: string,
  md = securityHeader(),
): StreamReader<T> {
  const fn = client[method] as (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<T>;
  const call = fn.call(client, {}, md);
  const buffered: T[] = [];
  let waiter: (() => void) | undefined;
  let failure: grpc.ServiceError | null | undefined;
  const ended = new Promise<grpc.ServiceError | null>((resolve) => {
    call.on('error', (e: grpc.ServiceError) => {
      failure = e;
      resolve(e);
      waiter?.();
    });
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) {
        failure = null;
        resolve(null);
        waiter?.();
      }
    });
  });
  call.on('data', (m: T) => {
    buffered.push(m);
    waiter?.();
  });
  const next = async (timeoutMs = 5000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    while (buffered.length === 0) {
      if (failure !== undefined) throw failure ?? new Error('stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      waiter = undefined;
    }
    return buffered.shift() as T;
  };
  return { call, next, ended, buffered };
}

/** Splits concatenated DER (each element a SEQUENCE with a definite length). */
export function splitDer(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf[at] !== 0x30) throw new Error(`not a DER SEQUENCE at ${at}`);
    const first = buf[at + 1] ?? 0;
    let len = first;
    let hdr = 2;
    if (first & 0x80) {
      const n = first & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[at + 2 + i] ?? 0);
      hdr = 2 + n;
    }
    out.push(buf.subarray(at, at + hdr + len));
    at += hdr + len;
  }
  return out;
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
