// A stand-in Kubernetes cluster for k8s_psat tests: a service-account issuer key (RS256, as
// kube-apiserver signs with), projected tokens shaped exactly as Kubernetes ≥ 1.30 issues them
// for a pod-bound service account, the JWKS file an operator exports with
// `kubectl get --raw /openid/v1/jwks`, and an HTTPS "API server" serving OIDC discovery, the
// JWKS and TokenReview (checking its caller's bearer token, as RBAC would).
import { type KeyObject, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import { makeTlsFiles } from './https.ts';

export interface PodBinding {
  namespace?: string;
  serviceAccount?: string;
  podName?: string;
  podUid?: string;
  nodeName?: string;
  nodeUid?: string;
  audience?: string[];
  /** Seconds from now (negative: already expired). */
  expiresIn?: number;
  issuer?: string;
  /** Sign with another key under the same kid (a forgery). */
  forge?: boolean;
  /** Leave the node out of the kubernetes.io claim (clusters before 1.30). */
  noNode?: boolean;
}

export interface StandInCluster {
  readonly dir: string;
  readonly issuer: string;
  readonly kid: string;
  readonly jwksFile: string;
  readonly jwks: { keys: Record<string, unknown>[] };
  token(b?: PodBinding): Promise<string>;
}

export function standInCluster(
  issuer = 'https://kubernetes.default.svc.cluster.local',
): StandInCluster {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-k8s-'));
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const forger: KeyObject = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const kid = 'Xc0dKpB0s6yq3lQmV8gk3fQ2W1eR7tYuI9oP4aS5dF6';
  const jwks = {
    keys: [
      { use: 'sig', kty: 'RSA', kid, alg: 'RS256', ...pick(publicKey.export({ format: 'jwk' })) },
    ],
  };
  const jwksFile = path.join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(jwks));
  return {
    dir,
    issuer,
    kid,
    jwksFile,
    jwks,
    async token(b = {}) {
      const now = Math.floor(Date.now() / 1000);
      const ns = b.namespace ?? 'tessera';
      const sa = b.serviceAccount ?? 'tessera-agent';
      const claims = {
        aud: b.audience ?? ['tessera'],
        exp: now + (b.expiresIn ?? 3600),
        iat: now - 10,
        iss: b.issuer ?? issuer,
        jti: randomUUID(),
        'kubernetes.io': {
          namespace: ns,
          ...(b.noNode
            ? {}
            : { node: { name: b.nodeName ?? 'node-1', uid: b.nodeUid ?? randomUUID() } }),
          pod: { name: b.podName ?? 'tessera-agent-x7k2p', uid: b.podUid ?? randomUUID() },
          serviceaccount: { name: sa, uid: '2f6a7c8e-5d4b-4a3c-9e1f-0a1b2c3d4e5f' },
          warnafter: now + 3000,
        },
        nbf: now - 10,
        sub: `system:serviceaccount:${ns}:${sa}`,
      };
      return new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid })
        .sign(b.forge ? forger : privateKey);
    },
  };
}

function pick(jwk: Record<string, unknown>): Record<string, unknown> {
  return { n: jwk.n, e: jwk.e };
}

export interface StandInApiServer {
  readonly url: string;
  readonly caFile: string;
  /** The bearer token the server's TokenReview calls must carry (written to tokenFile). */
  readonly tokenFile: string;
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

/** Serves discovery (issuer = the cluster's), /openid/v1/jwks and TokenReview over HTTPS. */
export async function startStandInApiServer(
  cluster: StandInCluster,
  o: { discoveryIssuer?: string } = {},
): Promise<StandInApiServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-k8s-api-'));
  const { caPem, certFile, keyFile } = makeTlsFiles(dir);
  const caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, caPem);
  const bearer = `reviewer-${randomUUID()}`;
  const tokenFile = path.join(dir, 'reviewer-token');
  writeFileSync(tokenFile, bearer);
  const hits = new Map<string, number>();
  const pub = await jose.importJWK(cluster.jwks.keys[0] as jose.JWK, 'RS256');
  let url = '';
  const server = https.createServer(
    { key: readFileSync(keyFile), cert: readFileSync(certFile) },
    (req, res) => {
      const p = req.url ?? '';
      hits.set(p, (hits.get(p) ?? 0) + 1);
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'GET' && p === '/.well-known/openid-configuration')
        return reply(200, {
          issuer: o.discoveryIssuer ?? cluster.issuer,
          jwks_uri: `${url}/openid/v1/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        });
      if (req.method === 'GET' && p === '/openid/v1/jwks') return reply(200, cluster.jwks);
      if (req.method === 'POST' && p === '/apis/authentication.k8s.io/v1/tokenreviews') {
        if (req.headers.authorization !== `Bearer ${bearer}`)
          return reply(401, { kind: 'Status', status: 'Failure', code: 401 });
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => void review(body).then((r) => reply(201, r)));
        return;
      }
      reply(404, { kind: 'Status', code: 404 });
    },
  );
  const review = async (body: string) => {
    const spec = (JSON.parse(body) as { spec: { token: string; audiences?: string[] } }).spec;
    const base = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec };
    try {
      const { payload } = await jose.jwtVerify(spec.token, pub, {
        issuer: cluster.issuer,
        ...(spec.audiences?.length ? { audience: spec.audiences } : {}),
      });
      const k = payload['kubernetes.io'] as {
        pod: { name: string; uid: string };
        node?: { name: string; uid: string };
        serviceaccount: { uid: string };
      };
      const aud = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]) as string[];
      return {
        ...base,
        status: {
          authenticated: true,
          audiences: spec.audiences?.length ? aud.filter((a) => spec.audiences?.includes(a)) : aud,
          user: {
            username: payload.sub,
            uid: k.serviceaccount.uid,
            groups: ['system:serviceaccounts', 'system:authenticated'],
            extra: {
              'authentication.kubernetes.io/credential-id': [`JTI=${String(payload.jti)}`],
              'authentication.kubernetes.io/pod-name': [k.pod.name],
              'authentication.kubernetes.io/pod-uid': [k.pod.uid],
              ...(k.node
                ? {
                    'authentication.kubernetes.io/node-name': [k.node.name],
                    'authentication.kubernetes.io/node-uid': [k.node.uid],
                  }
                : {}),
            },
          },
        },
      };
    } catch (e) {
      return {
        ...base,
        status: { authenticated: false, error: `[invalid bearer token, ${(e as Error).message}]` },
      };
    }
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    caFile,
    tokenFile,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
