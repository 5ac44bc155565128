import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_PSAT_TOKEN_PATH, k8sPsatAgent } from './agent.ts';
import { parsePsatPayload } from './payload.ts';
import { k8sPsatPlugin } from './plugin.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'tessera-psat-agent-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('k8s_psat agent', () => {
  it('reads the token again on every attestation (Kubernetes rotates it)', async () => {
    const file = path.join(dir, 'token');
    writeFileSync(file, 'first.token.value\n');
    const a = k8sPsatAgent('prod', file);
    assert.deepEqual(parsePsatPayload(await a.payload()), {
      cluster: 'prod',
      token: 'first.token.value',
    });
    writeFileSync(file, 'second.token.value');
    assert.equal(parsePsatPayload(await a.payload()).token, 'second.token.value');
    assert.equal(a.canReattest, true);
    assert.throws(() => a.answer(new Uint8Array(1)), {
      message: 'k8s_psat attestation takes no challenge',
    });
  });

  it('refuses a missing, empty or oversized token file with its path', async () => {
    const missing = path.join(dir, 'missing');
    await assert.rejects(k8sPsatAgent('prod', missing).payload(), {
      name: 'InvalidArgumentError',
      message: `k8s_psat: cannot read the token file ${missing}: ENOENT`,
    });
    const empty = path.join(dir, 'empty');
    writeFileSync(empty, '\n');
    await assert.rejects(k8sPsatAgent('prod', empty).payload(), {
      message: `k8s_psat: token file ${empty} is empty`,
    });
    const big = path.join(dir, 'big');
    writeFileSync(big, 'x'.repeat(1024 * 1024));
    await assert.rejects(k8sPsatAgent('prod', big).payload(), {
      message: `k8s_psat: token file ${big} is larger than 16384 bytes`,
    });
  });

  it('defaults the token path and checks the cluster name', () => {
    assert.deepEqual(k8sPsatPlugin.agentSchema.parse({ cluster: 'prod' }), {
      cluster: 'prod',
      token_path: DEFAULT_PSAT_TOKEN_PATH,
    });
    assert.equal(DEFAULT_PSAT_TOKEN_PATH, '/var/run/secrets/tokens/tessera-agent');
    assert.equal(k8sPsatPlugin.agentSchema.safeParse({ cluster: 'a b' }).success, false);
    assert.equal(k8sPsatPlugin.agentSchema.safeParse({}).success, false);
  });
});
