import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { makeX509PopCerts } from '../../../test/helpers/openssl.ts';
import { NODE_SELECTOR_TYPES } from '../../core/selector.ts';
import {
  builtinNodeAttestors,
  JOIN_TOKEN_TYPE,
  configuredAgentNodeAttestors,
  createAgentNodeAttestor,
  createServerNodeAttestors,
  nodeAttestorsAgentShape,
  nodeAttestorsServerSchema,
  type NodeAttestorServerDeps,
} from './catalog.ts';
import { hashJoinToken } from './join-token/server.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'tessera-node-attestors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TOKEN = 'abcdefghijklmnop0123';

function deps(consumed: string[] = []): NodeAttestorServerDeps {
  return {
    now: () => Date.now(),
    joinTokens: {
      consume: async (hash) => {
        consumed.push(hash);
        return hash === hashJoinToken(TOKEN) ? { spiffeId: '' } : null;
      },
    },
  };
}

describe('node attestor catalog', () => {
  it('lists each kind under its type', () => {
    assert.deepEqual(Object.keys(builtinNodeAttestors), [
      'join_token',
      'x509pop',
      'aws_iid',
      'gcp_iit',
      'azure_msi',
      'k8s_psat',
      'tpm',
    ]);
    for (const [type, p] of Object.entries(builtinNodeAttestors)) assert.equal(p.type, type);
    // The config schemas list the same kinds, and nothing else.
    assert.deepEqual(Object.keys(nodeAttestorsAgentShape), Object.keys(builtinNodeAttestors));
    const every = {
      join_token: {},
      x509pop: { ca_bundle_file: 'ca.pem' },
      aws_iid: {
        account_ids: ['111122223333'],
        allow_reattestation: false,
        ca_certificates_file: '',
      },
    };
    assert.deepEqual(nodeAttestorsServerSchema.parse(every), every);
    assert.equal(nodeAttestorsServerSchema.safeParse({ nope: {} }).success, false);
  });

  it('enables join_token by default and builds only what the server config names', () => {
    const config = nodeAttestorsServerSchema.parse(undefined);
    assert.deepEqual(config, { join_token: {} });
    assert.deepEqual([...createServerNodeAttestors(config, deps()).keys()], ['join_token']);
    assert.deepEqual([...createServerNodeAttestors({}, deps()).keys()], []);
  });

  it('gives join_token only the narrow port to consume tokens', async () => {
    const consumed: string[] = [];
    const a = createServerNodeAttestors({ join_token: {} }, deps(consumed)).get('join_token');
    const agent = await createAgentNodeAttestor({ join_token: TOKEN, x509pop: undefined });
    assert.ok(a && agent);
    assert.equal(agent.canReattest, false);
    const result = await a.attest(await agent.payload(), async () => assert.fail('no challenge'));
    assert.deepEqual(consumed, [hashJoinToken(TOKEN)]);
    assert.equal(result.canReattest, false);
    assert.throws(() => agent.answer(new Uint8Array(1)), {
      message: 'join_token attestation takes no challenge',
    });
  });

  it('runs x509pop end to end: the server half reads its CA file, the agent half its key', async () => {
    const certs = makeX509PopCerts(dir, 'node1.example.org');
    const certFile = path.join(dir, 'agent-chain.pem');
    const keyFile = path.join(dir, 'agent-key.pem');
    writeFileSync(certFile, certs.certPem);
    writeFileSync(keyFile, certs.keyPem);
    const server = createServerNodeAttestors(
      nodeAttestorsServerSchema.parse({ x509pop: { ca_bundle_file: certs.caFile } }),
      deps(),
    ).get('x509pop');
    const agentConfig = { join_token: '', x509pop: { cert_file: certFile, key_file: keyFile } };
    assert.deepEqual(configuredAgentNodeAttestors(agentConfig), ['x509pop']);
    const agent = await createAgentNodeAttestor(agentConfig);
    assert.ok(server && agent);
    assert.equal(agent.type, 'x509pop');
    const result = await server.attest(await agent.payload(), async (n) => agent.answer(n));
    assert.ok(result.selectors.some((s) => s.value === 'subject:cn:node1.example.org'));
    assert.deepEqual([...new Set(result.selectors.map((s) => s.type))], ['x509pop']);
    assert.equal(result.canReattest, true);
  });

  it('agrees with the node selector types core lists for the CLI (entry create warnings)', async () => {
    // join_token gives an agent no selectors; every other kind gives selectors of its own type
    // (x509pop: see the end-to-end case above).
    assert.deepEqual(
      NODE_SELECTOR_TYPES,
      Object.keys(builtinNodeAttestors).filter((t) => t !== JOIN_TOKEN_TYPE),
    );
    const a = createServerNodeAttestors({ join_token: {} }, deps()).get('join_token');
    const agent = await createAgentNodeAttestor({ join_token: TOKEN, x509pop: undefined });
    assert.ok(a && agent);
    const result = await a.attest(await agent.payload(), async () => assert.fail('no challenge'));
    assert.deepEqual(result.selectors, []);
  });

  it('refuses an x509pop key that is not the certificate key', async () => {
    const other = makeX509PopCerts(mkdtempSync(path.join(dir, 'other-')), 'other');
    const certs = makeX509PopCerts(mkdtempSync(path.join(dir, 'own-')), 'own');
    const certFile = path.join(dir, 'own.pem');
    const keyFile = path.join(dir, 'other.key');
    writeFileSync(certFile, certs.certPem);
    writeFileSync(keyFile, other.keyPem);
    await assert.rejects(
      createAgentNodeAttestor({ x509pop: { cert_file: certFile, key_file: keyFile } }),
      {
        name: 'InvalidArgumentError',
        message: `x509pop: ${keyFile} is not the key of ${certFile}`,
      },
    );
  });

  it('finds no agent half when none is configured', async () => {
    assert.deepEqual(configuredAgentNodeAttestors({ join_token: '' }), []);
    assert.equal(await createAgentNodeAttestor({ join_token: '' }), null);
  });
});
