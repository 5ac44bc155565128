import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type StandInApiServer,
  type StandInCluster,
  standInCluster,
  startStandInApiServer,
} from '../../../../test/helpers/k8s-cluster.ts';
import type { NodeAttestor, NodeAttestorServerDeps } from '../node-attestor.ts';
import { encodePsatPayload } from './payload.ts';
import { k8sPsatPlugin } from './plugin.ts';

const deps: NodeAttestorServerDeps = {
  now: () => Date.now(),
  joinTokens: { consume: async () => null },
};
const never = async (): Promise<Uint8Array> => assert.fail('k8s_psat takes no challenge');
const SA = ['tessera:tessera-agent'];

let cluster: StandInCluster;
let api: StandInApiServer;

before(async () => {
  cluster = standInCluster();
  api = await startStandInApiServer(cluster);
});
after(() => api?.close());

function server(clusterConfig: Record<string, unknown>): NodeAttestor {
  const config = k8sPsatPlugin.serverSchema.parse({ clusters: { prod: clusterConfig } });
  return k8sPsatPlugin.createServer(config, deps);
}

const payload = (token: string, name = 'prod') => encodePsatPayload({ cluster: name, token });

function modes(): [string, Record<string, unknown>][] {
  return [
    [
      'jwks_file',
      { service_account_allow_list: SA, issuer: cluster.issuer, jwks_file: cluster.jwksFile },
    ],
    [
      'oidc discovery',
      {
        service_account_allow_list: SA,
        issuer: cluster.issuer,
        oidc_discovery_url: `${api.url}/.well-known/openid-configuration`,
        ca_file: api.caFile,
      },
    ],
    [
      'token_review',
      {
        service_account_allow_list: SA,
        token_review: { api_server: api.url, token_file: api.tokenFile, ca_file: api.caFile },
      },
    ],
  ];
}

for (const mode of ['jwks_file', 'oidc discovery', 'token_review'] as const) {
  describe(`k8s_psat server (${mode})`, () => {
    let a: NodeAttestor;
    before(() => {
      a = server((modes().find(([m]) => m === mode) as [string, Record<string, unknown>])[1]);
    });

    it('admits a projected token of an allowed service account and names the agent by node uid', async () => {
      const nodeUid = randomUUID();
      const podUid = randomUUID();
      const token = await cluster.token({
        nodeUid,
        podUid,
        nodeName: 'node-7',
        podName: 'agent-abc',
      });
      const r = await a.attest(payload(token), never);
      assert.deepEqual(r, {
        idSegments: ['prod', nodeUid],
        selectors: [
          { type: 'k8s_psat', value: 'cluster:prod' },
          { type: 'k8s_psat', value: 'agent_ns:tessera' },
          { type: 'k8s_psat', value: 'agent_sa:tessera-agent' },
          { type: 'k8s_psat', value: 'agent_pod_name:agent-abc' },
          { type: 'k8s_psat', value: `agent_pod_uid:${podUid}` },
          { type: 'k8s_psat', value: 'agent_node_name:node-7' },
          { type: 'k8s_psat', value: `agent_node_uid:${nodeUid}` },
        ],
        canReattest: false,
        trustOnFirstUse: true,
      });
    });

    it('refuses a service account outside the allow list', async () => {
      const token = await cluster.token({ namespace: 'default', serviceAccount: 'web' });
      await assert.rejects(a.attest(payload(token), never), {
        name: 'PermissionDeniedError',
        message: 'k8s_psat: service account "default:web" is not allowed in cluster "prod"',
      });
    });

    it('refuses a token for another audience', async () => {
      const token = await cluster.token({ audience: ['https://kubernetes.default.svc'] });
      await assert.rejects(a.attest(payload(token), never), {
        name: 'PermissionDeniedError',
        message:
          mode === 'token_review'
            ? /^k8s_psat: the API server of cluster "prod" did not authenticate the token/
            : 'k8s_psat: token audience does not include "tessera"',
      });
    });

    it('refuses an expired token', async () => {
      const token = await cluster.token({ expiresIn: -120 });
      await assert.rejects(a.attest(payload(token), never), {
        name: 'PermissionDeniedError',
        message:
          mode === 'token_review'
            ? /^k8s_psat: the API server of cluster "prod" did not authenticate the token/
            : 'k8s_psat: token has expired',
      });
    });

    it('refuses a forged signature', async () => {
      const token = await cluster.token({ forge: true });
      await assert.rejects(a.attest(payload(token), never), {
        name: 'PermissionDeniedError',
        message:
          mode === 'token_review'
            ? /^k8s_psat: the API server of cluster "prod" did not authenticate the token/
            : 'k8s_psat: token signature does not verify with the keys of cluster "prod"',
      });
    });

    it('refuses a token not bound to a node', async () => {
      const token = await cluster.token({ noNode: true });
      await assert.rejects(a.attest(payload(token), never), {
        name: 'PermissionDeniedError',
        message:
          'k8s_psat: token is not bound to a node (Kubernetes 1.30+ adds the node to pod-bound tokens)',
      });
    });

    it('refuses an unknown cluster', async () => {
      await assert.rejects(a.attest(payload(await cluster.token(), 'staging'), never), {
        name: 'PermissionDeniedError',
        message: 'k8s_psat: cluster "staging" is not configured',
      });
    });
  });
}

describe('k8s_psat server: issuer keys', () => {
  it('refuses a token of another issuer signed by the cluster key', async () => {
    const a = server(modes()[0]![1]);
    const token = await cluster.token({ issuer: 'https://evil.example' });
    await assert.rejects(a.attest(payload(token), never), {
      message: 'k8s_psat: token issuer "https://evil.example" is not the issuer of cluster "prod"',
    });
  });

  it('turns trust on first use off with allow_reattestation', async () => {
    const a = server({ ...modes()[0]![1], allow_reattestation: true });
    const r = await a.attest(payload(await cluster.token()), never);
    assert.equal(r.canReattest, true);
    assert.equal(r.trustOnFirstUse, false);
  });

  it('refuses an unknown kid and a malformed token', async () => {
    const a = server(modes()[0]![1]);
    const [h, p, s] = (await cluster.token()).split('.') as [string, string, string];
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'other' })).toString(
      'base64url',
    );
    await assert.rejects(a.attest(payload(`${header}.${p}.${s}`), never), {
      message:
        'k8s_psat: token signature does not verify: kid "other" is not a key of cluster "prod"',
    });
    const none = Buffer.from(JSON.stringify({ alg: 'none', kid: cluster.kid })).toString(
      'base64url',
    );
    await assert.rejects(a.attest(payload(`${none}.${p}.${s}`), never), {
      message: 'k8s_psat: token algorithm none is not allowed',
    });
    await assert.rejects(a.attest(payload(`${h}.${p}`), never), {
      message: 'k8s_psat: token is not a compact JWS',
    });
  });

  it('refuses a discovery document naming another issuer (keys unavailable)', async () => {
    const other = await startStandInApiServer(cluster, { discoveryIssuer: 'https://other' });
    try {
      const a = server({
        service_account_allow_list: SA,
        issuer: cluster.issuer,
        oidc_discovery_url: `${other.url}/.well-known/openid-configuration`,
        ca_file: other.caFile,
      });
      await assert.rejects(a.attest(payload(await cluster.token()), never), {
        name: 'UnavailableError',
        message:
          /^k8s_psat: issuer keys unavailable: .*its issuer "https:\/\/other" is not the configured/,
      });
    } finally {
      await other.close();
    }
  });

  it('fetches discovery keys once for many tokens', async () => {
    const before = api.hits.get('/openid/v1/jwks') ?? 0;
    const a = server(modes()[1]![1]);
    for (let i = 0; i < 3; i++) await a.attest(payload(await cluster.token()), never);
    assert.equal((api.hits.get('/openid/v1/jwks') ?? 0) - before, 1);
  });
});

describe('k8s_psat payload and config', () => {
  it('refuses malformed payloads before any verification', async () => {
    const a = server(modes()[0]![1]);
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v));
    const cases: [Uint8Array, string][] = [
      [Buffer.from('{'), 'k8s_psat: payload is not valid JSON'],
      [enc([]), 'k8s_psat: payload is not a JSON object'],
      [
        enc({ cluster: 'a/b', token: 'x' }),
        'k8s_psat: payload cluster must be 1..63 characters of [A-Za-z0-9._-]',
      ],
      [enc({ cluster: 'prod' }), 'k8s_psat: payload has no token'],
      [
        enc({ cluster: 'prod', token: 'x'.repeat(16 * 1024 + 1) }),
        'k8s_psat: token is larger than 16384 bytes',
      ],
    ];
    for (const [p, message] of cases)
      await assert.rejects(a.attest(p, never), { name: 'PermissionDeniedError', message });
  });

  it('rejects configs that do not say how to verify, or say it twice', () => {
    const parse = (c: Record<string, unknown>) =>
      k8sPsatPlugin.serverSchema.safeParse({ clusters: { prod: c } });
    const first = (c: Record<string, unknown>) => {
      const r = parse(c);
      assert.equal(r.success, false);
      const i = r.error!.issues[0]!;
      return `${i.path.join('.')}: ${i.message}`;
    };
    assert.equal(
      first({ service_account_allow_list: SA }),
      'clusters.prod.issuer: required (or configure token_review)',
    );
    assert.equal(
      first({
        service_account_allow_list: SA,
        issuer: 'https://x',
        token_review: { api_server: 'https://x', token_file: 't' },
      }),
      'clusters.prod.issuer: use issuer (with its keys) or token_review, not both',
    );
    assert.equal(
      first({ service_account_allow_list: ['web'], issuer: 'https://x' }),
      'clusters.prod.service_account_allow_list.0: expected NAMESPACE:NAME',
    );
    assert.equal(
      first({
        service_account_allow_list: SA,
        issuer: 'https://x',
        oidc_discovery_url: 'http://x',
      }),
      'clusters.prod.oidc_discovery_url: expected an https URL without userinfo or fragment',
    );
    assert.equal(
      first({ service_account_allow_list: SA, issuer: 'https://x', jwks_file: 'f', ca_file: 'c' }),
      'clusters.prod.jwks_file: oidc_discovery_url and ca_file are for OIDC discovery, not with jwks_file',
    );
    assert.equal(k8sPsatPlugin.serverSchema.safeParse({ clusters: {} }).success, false);
    assert.deepEqual(
      parse({ service_account_allow_list: SA, issuer: 'https://x' }).data?.clusters.prod?.audience,
      ['tessera'],
    );
  });

  it('names the unreadable or invalid JWKS file at start', () => {
    assert.throws(
      () =>
        server({
          service_account_allow_list: SA,
          issuer: 'https://x',
          jwks_file: '/nonexistent/jwks',
        }),
      {
        name: 'InvalidArgumentError',
        message:
          'config: node_attestors.k8s_psat.clusters.prod.jwks_file: cannot read /nonexistent/jwks: ENOENT',
      },
    );
    const bad = path.join(cluster.dir, 'bad-jwks.json');
    writeFileSync(bad, '{"keys": []}');
    assert.throws(
      () => server({ service_account_allow_list: SA, issuer: 'https://x', jwks_file: bad }),
      {
        message: 'config: node_attestors.k8s_psat.clusters.prod.jwks_file: no signing keys',
      },
    );
  });
});
