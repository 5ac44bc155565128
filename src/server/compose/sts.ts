// Wiring of token exchange for the composition root (compose/server.ts): the registry of issuers
// and trust policies (config and datastore), the token endpoint, and introspection/revocation;
// the files the `sts` block names are read here (compose/files.ts).
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { AuthorityManager } from '../authority/authority-manager.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import { oidcUrls } from '../http/public-server.ts';
import { DEFAULT_DISCOVERY } from '../sts/discovery.ts';
import { TokenExchange } from '../sts/exchange.ts';
import {
  type IntrospectionConfig,
  TokenIntrospection,
  type TokenIntrospectionOptions,
} from '../sts/introspection.ts';
import { StsRegistry } from '../sts/registry.ts';
import type { Minter } from '../svid/minter.ts';
import type { ServerConfig } from './config/compile.ts';
import { readCaFile, readJwksFiles } from './files.ts';
import type { Task } from './tasks.ts';

export interface StsLayer {
  readonly registry: StsRegistry;
  /** Absent without an `sts` block (no public listener). */
  readonly tokenExchange: TokenExchange | undefined;
  readonly introspection: TokenIntrospection | undefined;
  /** The registry's reload of issuers and trust policies changed through another server. */
  readonly tasks: readonly Task[];
}

/** The registry, then the exchange and introspection over it (see `buildSts`). */
export async function startSts(
  config: ServerConfig,
  d: Omit<StsDeps, 'registry'> & { warn: (msg: string, f: object) => void },
): Promise<StsLayer> {
  const registry = await buildStsRegistry(config, d);
  const { tokenExchange, introspection } = buildSts(config, { ...d, registry });
  return {
    registry,
    tokenExchange,
    introspection,
    tasks: [
      {
        // Issuers and trust policies changed through another server's admin API.
        name: 'sts-reload',
        everyMs: config.sts?.reload_interval ?? 5_000,
        run: () => registry.poll(),
      },
    ],
  };
}

export interface StsDeps {
  trustDomain: string;
  minter: Minter;
  authorities: AuthorityManager;
  auditor: Auditor;
  clock: Clock;
  bundles: BundleCache;
  store: Store;
  registry: StsRegistry;
}

/**
 * The token endpoint and introspection/revocation, whenever the public listener is on (the
 * `sts` block then has every default when absent, see config/compile.ts).
 */
export function buildSts(
  config: ServerConfig,
  d: StsDeps,
): { tokenExchange?: TokenExchange; introspection?: TokenIntrospection } {
  if (!config.sts) return {};
  const tokenExchange = new TokenExchange({
    config: config.sts,
    trustDomain: d.trustDomain,
    minter: d.minter,
    auditor: d.auditor,
    clock: d.clock,
    registry: d.registry,
    tokenEndpoint: oidcUrls(config.jwt.issuer).token,
    dpopProofs: d.store.dpopProofs,
    jwksFiles: readJwksFiles(config.sts.issuers),
    bundle: (td) => d.store.bundles.get(td),
  });
  const introspection = newIntrospection(config.sts, tokenExchange, {
    issuer: config.jwt.issuer,
    bundle: () => d.bundles.bundle,
    revoked: d.store.revokedTokens,
    auditor: d.auditor,
    clock: d.clock,
    isApiClient: (id) => d.registry.isIntrospectionClient(id),
  });
  return { tokenExchange, introspection };
}

/** Introspection and revocation; every `sts.introspection_clients` name must issue access tokens. */
function newIntrospection(
  sts: IntrospectionConfig,
  exchange: TokenExchange,
  o: Omit<TokenIntrospectionOptions, 'config'>,
): TokenIntrospection {
  const known = new Set(exchange.accessTokenClients());
  sts.introspection_clients.forEach((name, i) => {
    if (!known.has(name))
      throw new InvalidArgumentError(
        `config: sts.introspection_clients[${i}]: "${name}" is not a trust policy that issues access tokens`,
      );
  });
  return new TokenIntrospection({ ...o, config: sts });
}

/**
 * Issuers and trust policies of the config and of the datastore. Built with or without an `sts`
 * block: the admin API manages them either way; the exchange is served only with one.
 */
export function buildStsRegistry(
  config: ServerConfig,
  d: { trustDomain: string; store: Store; clock: Clock; warn: (msg: string, f: object) => void },
): Promise<StsRegistry> {
  const sts = config.sts;
  return StsRegistry.create({
    config: sts ?? { issuers: [], policies: [], max_ttl: 3_600_000 },
    trustDomain: d.trustDomain,
    store: d.store,
    clock: d.clock,
    discovery: { ...DEFAULT_DISCOVERY, ca: readCaFile(sts?.ca_file ?? '') },
    jwksFiles: readJwksFiles(sts?.issuers ?? []),
    warn: (msg, fields) => d.warn(msg, fields),
  });
}
