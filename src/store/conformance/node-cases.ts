// Conformance: NodeStore.
import assert from 'node:assert/strict';
import { NotFoundError } from '../../core/errors.ts';
import type { AttestedNode } from '../../core/node.ts';
import { type Cases, T0, makeNode } from './fixtures.ts';

export const nodeCases: Cases = {
  'upserts, gets, re-attests (keeping createdAt) and counts': async (s) => {
    const n = makeNode(1);
    assert.deepEqual(await s.nodes.upsert(n), n);
    assert.deepEqual(await s.nodes.get(n.spiffeId), n);
    assert.equal(await s.nodes.get('spiffe://example.org/none'), null);
    const again = makeNode(1, {
      serialNumber: 'ff',
      canReattest: true,
      selectors: [],
      createdAt: T0 + 99,
      updatedAt: T0 + 99,
    });
    assert.deepEqual(await s.nodes.upsert(again), { ...again, createdAt: T0 });
    assert.equal(await s.nodes.count(), 1);
  },

  'applies partial updates; NotFoundError when missing': async (s) => {
    const n = makeNode(1);
    await s.nodes.upsert(n);
    const patched = await s.nodes.update(n.spiffeId, {
      newSerialNumber: 'abc',
      banned: true,
      selectors: [{ type: 'x509pop', value: 'cn:x' }],
      updatedAt: T0 + 5,
    });
    const expected: AttestedNode = {
      ...n,
      newSerialNumber: 'abc',
      banned: true,
      selectors: [{ type: 'x509pop', value: 'cn:x' }],
      updatedAt: T0 + 5,
    };
    assert.deepEqual(patched, expected);
    const moved = await s.nodes.update(n.spiffeId, {
      serialNumber: 'abc',
      newSerialNumber: '',
      expiresAt: T0 + 7,
    });
    assert.deepEqual(moved, {
      ...expected,
      serialNumber: 'abc',
      newSerialNumber: '',
      expiresAt: T0 + 7,
    });
    assert.deepEqual(await s.nodes.update(n.spiffeId, {}), moved);
    await assert.rejects(s.nodes.update('spiffe://example.org/x', { banned: true }), {
      name: 'NotFoundError',
      message: 'node "spiffe://example.org/x" not found',
    });
    await assert.rejects(s.nodes.update('spiffe://example.org/x', {}), NotFoundError);
  },

  'deletes and returns the node; NotFoundError when missing': async (s) => {
    const n = makeNode(1);
    await s.nodes.upsert(n);
    assert.deepEqual(await s.nodes.delete(n.spiffeId), n);
    assert.equal(await s.nodes.count(), 0);
    await assert.rejects(s.nodes.delete(n.spiffeId), NotFoundError);
  },

  'lists in pages by SPIFFE ID with banned and attestation-type filters': async (s) => {
    const nodes = Array.from({ length: 12 }, (_, i) =>
      makeNode(12 - i, {
        banned: i % 4 === 0,
        attestationType: i % 2 === 0 ? 'join_token' : 'x509pop',
      }),
    );
    for (const n of nodes) await s.nodes.upsert(n);
    const sorted = [...nodes].sort((a, b) => (a.spiffeId < b.spiffeId ? -1 : 1));
    const collect = async (filter: Parameters<typeof s.nodes.list>[0], size: number) => {
      const out: AttestedNode[] = [];
      let token = '';
      do {
        const page = await s.nodes.list(filter, size, token);
        out.push(...page.items);
        token = page.nextPageToken;
      } while (token !== '');
      return out;
    };
    assert.deepEqual(await collect({}, 5), sorted);
    assert.deepEqual(
      await collect({ banned: true }, 2),
      sorted.filter((n) => n.banned),
    );
    assert.deepEqual(
      await collect({ banned: false }, 100),
      sorted.filter((n) => !n.banned),
    );
    assert.deepEqual(
      await collect({ attestationType: 'x509pop', banned: false }, 1),
      sorted.filter((n) => n.attestationType === 'x509pop' && !n.banned),
    );
  },

  'replaces selectors only while they are still the expected ones and the node is not banned':
    async (s) => {
      const tag = (v: string) => ({ type: 'aws_iid', value: `tag:env:${v}` });
      const base = { type: 'aws_iid', value: 'instance_id:i-1' };
      const n = makeNode(1, { selectors: [base, tag('prod')] });
      await s.nodes.upsert(n);
      const changesBefore = await s.changes.latestId();
      const updated = await s.nodes.replaceSelectors(
        n.spiffeId,
        [base, tag('prod')],
        [base, tag('dev')],
        T0 + 9,
      );
      assert.deepEqual(updated, { ...n, selectors: [base, tag('dev')], updatedAt: T0 + 9 });
      assert.deepEqual(await s.nodes.get(n.spiffeId), updated);
      // One change event, so agents' sync streams see the node change.
      assert.equal(await s.changes.latestId(), changesBefore + 1);
      // A second caller holding the old selectors (another server, a re-attestation) loses.
      assert.equal(
        await s.nodes.replaceSelectors(n.spiffeId, [base, tag('prod')], [base, tag('x')], T0 + 10),
        null,
      );
      // Order matters (the exact stored list), and nothing changed on a miss.
      assert.equal(
        await s.nodes.replaceSelectors(n.spiffeId, [tag('dev'), base], [base], T0 + 11),
        null,
      );
      assert.deepEqual(await s.nodes.get(n.spiffeId), updated);
      assert.equal(await s.changes.latestId(), changesBefore + 1);
      // Banned: never refreshed; missing: null, not an error.
      await s.nodes.update(n.spiffeId, { banned: true });
      assert.equal(
        await s.nodes.replaceSelectors(n.spiffeId, [base, tag('dev')], [base], T0 + 12),
        null,
      );
      assert.equal(
        await s.nodes.replaceSelectors('spiffe://example.org/none', [], [base], T0 + 12),
        null,
      );
    },
};
