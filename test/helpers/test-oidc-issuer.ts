// A stand-in external OIDC issuer (GitHub Actions) for token-exchange tests: a P-256 key and the
// JWKS file the server is configured to trust, plus the RFC 8693 constants the tests share; and
// an HTTPS issuer with an OIDC discovery document and rotating keys (startDiscoveryIssuer).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import { makeTlsFiles } from './https.ts';

export const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const GH_AUD = 'https://github.com/octo-org';

export interface TestIssuer {
  readonly dir: string;
  readonly jwksFile: string;
  readonly signingKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function testIssuer(): TestIssuer {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-oidc-issuer-'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'gh-1', use: 'sig', alg: 'ES256' };
  const jwksFile = path.join(dir, 'github-jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  return { dir, jwksFile, signingKey: privateKey, publicKey };
}

export interface DiscoveryIssuer {
  /** https://127.0.0.1:<port>, the `iss` of its tokens. */
  readonly issuer: string;
  /** PEM of the self-signed certificate the server must trust (sts.ca_file). */
  readonly caFile: string;
  readonly caPem: string;
  /** The key currently published and used by sign(). */
  kid: string;
  signingKey: KeyObject;
  /** Publishes a new key (the old one is dropped unless keepOld). */
  rotate(keepOld?: boolean): void;
  sign(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  /** Requests served, by path. */
  readonly hits: Map<string, number>;
  /** Misbehaviour knobs for tests. */
  behaviour: {
    issuerInDocument?: string;
    delayMs?: number;
    jwksPadBytes?: number;
    redirectJwks?: string;
  };
  close(): Promise<void>;
}

/** A local HTTPS OIDC issuer with a discovery document and rotating ES256 keys. */
export async function startDiscoveryIssuer(): Promise<DiscoveryIssuer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-oidc-https-'));
  const { caPem, certFile, keyFile } = makeTlsFiles(dir);
  const caFile = path.join(dir, 'ca.pem');
  let published: Record<string, unknown>[] = [];
  let n = 0;
  const hits = new Map<string, number>();
  const state = {
    kid: '',
    signingKey: undefined as unknown as KeyObject,
  };
  const rotate = (keepOld = false) => {
    n++;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = `k${n}`;
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'ES256' };
    published = keepOld ? [...published, jwk] : [jwk];
    state.kid = kid;
    state.signingKey = privateKey;
  };
  rotate();
  const holder: { behaviour: DiscoveryIssuer['behaviour'] } = { behaviour: {} };
  let issuer = '';
  const server = https.createServer(
    { key: readFileSync(keyFile), cert: readFileSync(certFile) },
    (req, res) => {
      const p = req.url ?? '';
      hits.set(p, (hits.get(p) ?? 0) + 1);
      const behaviour = holder.behaviour;
      const reply = (body: unknown) => {
        const send = () => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(body));
        };
        if (behaviour.delayMs) setTimeout(send, behaviour.delayMs);
        else send();
      };
      if (p === '/.well-known/openid-configuration')
        return reply({
          issuer: behaviour.issuerInDocument ?? issuer,
          jwks_uri: `${issuer}/jwks`,
          id_token_signing_alg_values_supported: ['ES256'],
        });
      if (p === '/jwks') {
        if (behaviour.redirectJwks) {
          res.writeHead(302, { location: behaviour.redirectJwks });
          return res.end();
        }
        return reply({
          keys: published,
          ...(behaviour.jwksPadBytes ? { pad: 'x'.repeat(behaviour.jwksPadBytes) } : {}),
        });
      }
      res.statusCode = 404;
      res.end();
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const self: DiscoveryIssuer = {
    issuer,
    caFile,
    caPem,
    get kid() {
      return state.kid;
    },
    get signingKey() {
      return state.signingKey;
    },
    rotate,
    sign: (claims, header = {}) =>
      new jose.SignJWT({ iss: issuer, ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: state.kid, typ: 'JWT', ...header })
        .sign(state.signingKey),
    hits,
    get behaviour() {
      return holder.behaviour;
    },
    set behaviour(b) {
      holder.behaviour = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  } as DiscoveryIssuer;
  return self;
}
