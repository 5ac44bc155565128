// `entry create` warns on stderr — and still creates, exit 0 — when a selector type is one no
// built-in attestor produces or the parent ID names no agent; it stays quiet for the usual cases.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestAgent, type TestAgentStand } from '../testing/agent-harness.ts';
import { startTestServer, type TestServer } from '../testing/harness.ts';
import { NODE_SELECTOR_TYPES } from '../../core/selector.ts';

const SERVER_ID = 'spiffe://example.org/spire/server';

describe('entry create warnings (server only)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  const create = (spiffeId: string, parentId: string, ...selectors: string[]) =>
    s.cli(
      'entry',
      'create',
      '--spiffe-id',
      spiffeId,
      '--parent-id',
      parentId,
      '--selector',
      ...selectors,
      '--output',
      'json',
    );

  const tokenAgent = async () => {
    const r = await s.cli('token', 'generate', '--output', 'json');
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { agentSpiffeId: string }).agentSpiffeId;
  };

  test("no warning for a pending join token's agent, a node alias and its child", async () => {
    const agent = await tokenAgent();
    const a = await create(
      'spiffe://example.org/web',
      agent,
      'unix:uid:1000',
      'docker:label:app:web',
      'k8s:ns:prod',
    );
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stderr, '');
    const alias = await create(
      'spiffe://example.org/nodes/pop',
      SERVER_ID,
      'x509pop:subject:cn:node1',
    );
    assert.equal(alias.code, 0, alias.stderr);
    assert.equal(alias.stderr, '');
    const child = await create(
      'spiffe://example.org/db',
      'spiffe://example.org/nodes/pop',
      'unix:uid:1001',
    );
    assert.equal(child.code, 0, child.stderr);
    assert.equal(child.stderr, '');
  });

  test('a selector type no workload attestor produces: a warning, and the entry is created', async () => {
    const agent = await tokenAgent();
    const r = await create(
      'spiffe://example.org/typo',
      agent,
      'uid:1000',
      'unix:gid:0',
      'kubernetes:ns:prod',
    );
    assert.equal(r.code, 0, r.stderr);
    const id = (JSON.parse(r.stdout) as { id: string }).id;
    assert.equal(
      r.stderr,
      // In the entry's canonical (sorted) selector order.
      'warning: selector type "kubernetes" is not one the built-in workload attestors produce (unix, docker, k8s): this entry will match no workload\n' +
        'warning: selector type "uid" is not one the built-in workload attestors produce (unix, docker, k8s): this entry will match no workload\n',
    );
    const shown = await s.cli('entry', 'show', '--id', id, '--output', 'json');
    assert.equal(shown.code, 0, shown.stderr);
  });

  test('a node alias with workload selectors: a node-attestor warning', async () => {
    const r = await create('spiffe://example.org/nodes/wrong', SERVER_ID, 'unix:uid:0');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      `warning: selector type "unix" is not one the built-in node attestors produce (${NODE_SELECTOR_TYPES.join(', ')}): this node alias will match no agent\n`,
    );
  });

  test('a parent ID that names no agent, token or alias: a warning, and the entry is created', async () => {
    const agent = await tokenAgent();
    const typo = agent.slice(0, -1) + (agent.endsWith('0') ? '1' : '0');
    for (const parent of [typo, 'spiffe://example.org/nodes/missing']) {
      const r = await create(
        `spiffe://example.org/orphan${parent.length}`,
        parent,
        'unix:uid:1000',
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stderr,
        `warning: parent ID ${parent} is neither an attested agent, a pending join token's agent, nor a node alias (the SPIFFE ID of an existing entry): no agent will receive this entry until one does (see \`tessera agent list\`)\n`,
      );
      const listed = await s.cli('entry', 'list', '--parent-id', parent, '--output', 'json');
      assert.equal((JSON.parse(listed.stdout) as { entries: unknown[] }).entries.length, 1);
    }
  });
});

describe('entry create warnings (attested agent)', () => {
  let stand: TestAgentStand;
  before(async () => {
    stand = await startTestAgent();
  });
  after(() => stand.stop());

  test('no warning for an attested agent as the parent', async () => {
    const r = await stand.admin(
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/svc',
      '--parent-id',
      stand.agentSpiffeId,
      '--selector',
      stand.selfSelector,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});
