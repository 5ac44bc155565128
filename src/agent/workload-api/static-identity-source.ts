// Test support (imported only by *.test.ts): an in-memory WorkloadIdentitySource. A real
// implementation of the port — entries keyed by one selector, real X.509 material, JWT-SVIDs
// signed and verified with the crypto layer — whose state tests change and whose onChange they
// fire by hand.
import type { KeyObject } from 'node:crypto';
import { PermissionDeniedError } from '../../core/errors.ts';
import { formatSelector, type Selector } from '../../core/selector.ts';
import type { ManagedKey } from '../../crypto/key-manager.ts';
import { signJwtSvid } from '../../crypto/jwt/sign.ts';
import { verifyJwtSvid } from '../../crypto/jwt/verify.ts';
import type { AttestedCaller, CallerProcess, SelectorSource } from '../attestation/caller.ts';
import type {
  JwtSvidItem,
  WorkloadIdentitySource,
  WorkloadView,
  X509SvidItem,
} from './identity-source.ts';

export interface StaticEntry {
  /** "type:value"; a caller whose selectors include it gets `svid`. */
  readonly selector: string;
  readonly svid: X509SvidItem;
}

export interface StaticState {
  readonly trustDomainId: string;
  readonly bundle: readonly Uint8Array[];
  readonly entries: readonly StaticEntry[];
  readonly federatedBundles: ReadonlyMap<string, readonly Uint8Array[]>;
  readonly jwtBundles: ReadonlyMap<string, string>;
}

export interface JwtAuthority {
  readonly key: ManagedKey;
  readonly kid: string;
}

/**
 * Both ends of the seam for tests: the SelectorSource behind the attestation service (selectors
 * from `selectorsOf`, entries matched by the Workload API's view) and the identity source.
 */
export class StaticIdentitySource implements WorkloadIdentitySource, SelectorSource {
  state: StaticState;
  readonly attestCalls: CallerProcess[] = [];
  /** Caller → selectors; default: `unix:uid:<uid>`. */
  selectorsOf: (caller: CallerProcess) => Selector[] = (c) => [
    { type: 'unix', value: `uid:${c.uid}` },
  ];
  /** Callers match an entry even without an SVID (as a restarted agent whose server is away). */
  identifiedWithoutSvids = false;
  /** Runs inside attest (e.g. to make attestation slow, or fail). */
  attestHook: ((caller: CallerProcess, signal: AbortSignal) => Promise<void>) | undefined;
  readonly #listeners = new Set<() => void>();
  readonly #jwt: JwtAuthority;
  readonly #jwtKeys: ReadonlyMap<string, KeyObject>;

  constructor(state: StaticState, jwt: JwtAuthority) {
    this.state = state;
    this.#jwt = jwt;
    this.#jwtKeys = new Map([[`${state.trustDomainId}#${jwt.kid}`, jwt.key.publicKey]]);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Replaces the state and notifies, as a rotation or entry change would. */
  update(change: (s: StaticState) => StaticState): void {
    this.state = change(this.state);
    this.notify();
  }

  /** Notifies without changing anything (the server must not resend). */
  notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  async attest(caller: CallerProcess, signal: AbortSignal): Promise<Selector[]> {
    this.attestCalls.push(caller);
    await this.attestHook?.(caller, signal);
    return this.selectorsOf(caller);
  }

  readonly prepared: AttestedCaller[] = [];

  async prepare(caller: AttestedCaller): Promise<void> {
    this.prepared.push(caller);
  }

  view(caller: AttestedCaller): WorkloadView {
    const mine = new Set(caller.selectors.map(formatSelector));
    const s = this.state;
    const svids = s.entries.filter((e) => mine.has(e.selector)).map((e) => e.svid);
    return {
      svids,
      identified: svids.length > 0 || this.identifiedWithoutSvids,
      trustDomainId: s.trustDomainId,
      bundle: s.bundle,
      federatedBundles: s.federatedBundles,
      jwtBundles: s.jwtBundles,
    };
  }

  onChange(listener: () => void): () => void {
    const wrapped = () => listener();
    this.#listeners.add(wrapped);
    return () => this.#listeners.delete(wrapped);
  }

  async fetchJwtSvids(
    caller: AttestedCaller,
    audience: readonly string[],
    spiffeId: string,
  ): Promise<JwtSvidItem[]> {
    const svids = this.view(caller).svids.filter((s) => !spiffeId || s.spiffeId === spiffeId);
    if (svids.length === 0) throw new PermissionDeniedError('no identity issued');
    const iat = Math.floor(Date.now() / 1000);
    return Promise.all(
      svids.map(async (s) => ({
        spiffeId: s.spiffeId,
        hint: s.hint,
        token: await signJwtSvid({
          key: this.#jwt.key,
          kid: this.#jwt.kid,
          claims: { sub: s.spiffeId, aud: audience, iat, exp: iat + 300 },
        }),
      })),
    );
  }

  async validateJwtSvid(
    token: string,
    audience: string,
    caller: AttestedCaller,
  ): Promise<{ spiffeId: string; claims: Record<string, unknown> }> {
    const visible = this.view(caller).jwtBundles;
    const v = await verifyJwtSvid(token, {
      audience,
      now: Date.now(),
      resolveKey: (td, kid) =>
        visible.has(`spiffe://${td}`) ? this.#jwtKeys.get(`spiffe://${td}#${kid}`) : undefined,
    });
    return { spiffeId: v.spiffeId, claims: v.claims };
  }
}
