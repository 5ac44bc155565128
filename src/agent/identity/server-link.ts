// The agent's link to its server: node attestation, agent SVID renewal, and the mTLS clients
// built from the current agent SVID and trust bundle (rebuilt whenever either changes).
//
// It also watches how calls end: a call that finds the server unreachable marks it down, and the
// next call that gets an answer marks it back and tells `onServerBack` listeners, so the entry
// sync reconnects at once instead of waiting out its backoff. While the server is down the
// lifecycle probes it once a tick (`probe`, a cheap GetBundle on the same session). With several
// server addresses (server-endpoints.ts), a server that does not answer is left for the next one:
// the same agent SVID and bundle serve with every server of the trust domain.
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  type Client,
  type Interceptor,
  createClient,
} from '@connectrpc/connect';
import { AsyncQueue } from '../../core/async-queue.ts';
import { TesseraError } from '../../core/errors.ts';
import { createCsr } from '../../crypto/x509/csr-create.ts';
import { derToPem } from '../../crypto/x509/pem.ts';
import { mtlsConnection } from '../../client/server-transport.ts';
import {
  AgentService,
  AttestAgentRequestSchema,
  type AttestAgentRequest,
} from '../../../proto/gen/tessera/v1/agent_pb.js';
import { BundleService } from '../../../proto/gen/tessera/v1/bundle_pb.js';
import { CredentialReleaseService } from '../../../proto/gen/tessera/v1/release_pb.js';
import { SvidService } from '../../../proto/gen/tessera/v1/svid_pb.js';
import { SyncService } from '../../../proto/gen/tessera/v1/sync_pb.js';
import {
  type AgentIdentity,
  type AgentStateDir,
  certPem,
  identityFrom,
  keyPem,
} from './agent-identity.ts';
import { type Lookup, ServerEndpoints } from './server-endpoints.ts';
import type { AgentNodeAttestor } from '../../plugins/node-attestors/catalog.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

/** The agent cannot continue: banned, its join token spent, its evidence refused. */
export class AgentFatalError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('permission_denied', message, options);
    this.name = 'AgentFatalError';
  }
}

export interface ServerClients {
  /** The agent SVID these clients authenticate with. */
  readonly identity: AgentIdentity;
  /** The server address they call. */
  readonly address: string;
  readonly agent: Client<typeof AgentService>;
  readonly svid: Client<typeof SvidService>;
  readonly sync: Client<typeof SyncService>;
  readonly bundle: Client<typeof BundleService>;
  /** Credential release for attested workloads (agent/credentials). */
  readonly release: Client<typeof CredentialReleaseService>;
}

export class ServerLink {
  readonly #endpoints: ServerEndpoints;
  readonly #onFailover: (from: string, to: string) => void;
  readonly #serverId: string;
  readonly #state: AgentStateDir;
  #identity: AgentIdentity | null = null;
  #bundle: readonly Uint8Array[] = [];
  /** Whether the data dir holds #bundle: a bootstrap bundle is written there on first use. */
  #bundleSaved = false;
  #clients: ServerClients | null = null;
  #closeClients: () => void = () => {};
  /** A call found the server unreachable and none has been answered since. */
  #down = false;
  readonly #backListeners = new Set<() => void>();
  /** Watches the calls to `address`: an answer marks the server back, Unavailable moves on. */
  #observe(address: string): Interceptor {
    return (next) => async (req) => {
      try {
        const res = await next(req);
        this.#answered();
        return res;
      } catch (e) {
        this.noteFailure(e, address);
        throw e;
      }
    };
  }

  constructor(o: {
    addresses: readonly string[];
    trustDomain: string;
    state: AgentStateDir;
    lookup?: Lookup;
    onFailover?: (from: string, to: string) => void;
  }) {
    this.#endpoints = new ServerEndpoints(o.addresses, o.lookup);
    this.#onFailover = o.onFailover ?? (() => {});
    this.#serverId = `spiffe://${o.trustDomain}/spire/server`;
    this.#state = o.state;
  }

  get identity(): AgentIdentity | null {
    return this.#identity;
  }

  get bundle(): readonly Uint8Array[] {
    return this.#bundle;
  }

  /**
   * Restores the persisted identity and bundle (`saved`), or the bootstrap bundle (not saved
   * yet: the server's first bundle is written to the data dir even when it is the same, so a
   * restart needs no bootstrap bundle).
   */
  restore(identity: AgentIdentity | null, bundle: readonly Uint8Array[], saved: boolean): void {
    this.#identity = identity;
    this.#bundle = bundle;
    this.#bundleSaved = saved;
    this.#resetClients();
  }

  async setBundle(caDers: readonly Uint8Array[]): Promise<void> {
    if (caDers.length === 0) return;
    const same = sameDers(caDers, this.#bundle);
    if (same && this.#bundleSaved) return;
    await this.#state.saveBundle(caDers);
    this.#bundleSaved = true;
    if (same) return;
    this.#bundle = caDers;
    this.#resetClients();
  }

  /** Whether the last call that reached for the server found it unreachable. */
  get down(): boolean {
    return this.#down;
  }

  /** Calls `fn` each time the server answers again after being down; returns an unsubscribe. */
  onServerBack(fn: () => void): () => void {
    this.#backListeners.add(fn);
    return () => this.#backListeners.delete(fn);
  }

  /** The server address in use now. */
  get address(): string {
    return this.#endpoints.current;
  }

  /** Expands server names into all their addresses (before the first call). */
  async resolveAddresses(): Promise<void> {
    await this.#endpoints.resolve();
  }

  /**
   * Records a failed call to `address` (also one seen outside the interceptor, such as a stream
   * that broke after its headers): Unavailable means the server did not answer, and the next
   * address, if any, is used from the next call on.
   */
  noteFailure(e: unknown, address: string): void {
    if (ConnectError.from(e).code !== Code.Unavailable) return;
    this.#down = true;
    const next = this.#endpoints.advance(address);
    if (next === null) return;
    this.#onFailover(address, next);
    this.#resetClients();
  }

  /** One cheap authenticated call, to learn whether the server answers again (errors ignored). */
  async probe(signal: AbortSignal): Promise<void> {
    await this.clients()
      .bundle.getBundle({}, { signal })
      .catch(() => {});
  }

  #answered(): void {
    if (!this.#down) return;
    this.#down = false;
    for (const fn of this.#backListeners) fn();
  }

  clients(): ServerClients {
    if (!this.#identity) throw new Error('the agent is not attested');
    if (!this.#clients) {
      const address = this.#endpoints.current;
      const { transport: t, close } = mtlsConnection({
        compression: false,
        address,
        trustBundlePem: this.#bundlePem(),
        serverId: this.#serverId,
        clientCertPem: certPem(this.#identity),
        clientKeyPem: keyPem(this.#identity),
        interceptors: [this.#observe(address)],
      });
      this.#closeClients = close;
      this.#clients = {
        identity: this.#identity,
        address,
        agent: createClient(AgentService, t),
        svid: createClient(SvidService, t),
        sync: createClient(SyncService, t),
        bundle: createClient(BundleService, t),
        release: createClient(CredentialReleaseService, t),
      };
    }
    return this.#clients;
  }

  /** Closes the connection to the server (at shutdown). */
  close(): void {
    const close = this.#closeClients;
    this.#closeClients = () => {};
    this.#clients = null;
    close();
  }

  #resetClients(): void {
    // Calls in flight on the old session finish on it; new calls open a session with the new
    // identity or bundle. The old one is closed so that no idle session outlives its use.
    const close = this.#closeClients;
    this.#closeClients = () => {};
    this.#clients = null;
    setTimeout(close, 30_000).unref();
  }

  /** Node attestation over server-authenticated TLS (or none at all when insecure). */
  async attest(
    attestor: AgentNodeAttestor,
    insecure: boolean,
    signal?: AbortSignal,
  ): Promise<AgentIdentity> {
    const key = await newKey();
    const address = this.#endpoints.current;
    const { transport, close } = mtlsConnection({
      address,
      trustBundlePem: this.#bundlePem(),
      serverId: this.#serverId,
      insecure,
    });
    const api = createClient(AgentService, transport);
    const first = create(AttestAgentRequestSchema, {
      step: {
        case: 'params',
        value: { type: attestor.type, payload: await attestor.payload(), csr: createCsr(key) },
      },
    });
    const requests = new AsyncQueue<AttestAgentRequest>(16);
    requests.push(first);
    try {
      for await (const res of api.attestAgent(requests, signal ? { signal } : {})) {
        if (res.step.case === 'challenge') {
          requests.push(
            create(AttestAgentRequestSchema, {
              step: { case: 'challengeResponse', value: await attestor.answer(res.step.value) },
            }),
          );
        } else if (res.step.case === 'result') {
          const r = res.step.value;
          const identity = identityFrom(r.spiffeId, r.svidChain, key);
          await this.#state.saveIdentity(identity);
          this.#identity = identity;
          this.#resetClients();
          await this.setBundle(r.bundle?.x509Authorities ?? []);
          return identity;
        }
      }
      throw new Error('attestation ended without a result');
    } catch (e) {
      // The next attempt goes to the next server (nothing was attested on this one).
      this.noteFailure(e, address);
      throw e;
    } finally {
      requests.close();
      close();
    }
  }

  /** Renews the agent SVID with a new key; the new one is used from the next call on. */
  async renew(signal?: AbortSignal): Promise<AgentIdentity> {
    const current = this.#identity;
    if (!current) throw new Error('the agent is not attested');
    const key = await newKey();
    const res = await this.clients().agent.renewAgent(
      { csr: createCsr(key) },
      signal ? { signal } : {},
    );
    const identity = identityFrom(current.spiffeId, res.svidChain, key);
    await this.#state.saveIdentity(identity);
    this.#identity = identity;
    this.#resetClients();
    return identity;
  }

  #bundlePem(): string {
    return this.#bundle.map((d) => derToPem(d)).join('');
  }
}

async function newKey(): Promise<KeyObject> {
  return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
}

function sameDers(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return (
    a.length === b.length &&
    a.every((d, i) => Buffer.from(d).equals(Buffer.from(b[i] ?? new Uint8Array())))
  );
}
