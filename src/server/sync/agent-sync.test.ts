// The agent's sync stream follows its node record: a change conditions can see (other
// selectors) is sent as a new node_fingerprint and node-alias entries follow the new selectors;
// a renewal (serial only) sends nothing; a ban ends the stream.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../../core/entry.ts';
import type { AttestedNode } from '../../core/node.ts';
import { formatSelector } from '../../core/selector.ts';
import { BundleCache } from '../authority/bundle-cache.ts';
import { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import { nodeFingerprint } from '../posture/node-fingerprint.ts';
import { EntryIndex } from '../registration/entry-index.ts';
import { AgentSync, type SyncOut } from './agent-sync.ts';

const SERVER = 'spiffe://example.org/spire/server';
const AGENT = 'spiffe://example.org/spire/agent/aws_iid/1/eu-west-1/i-1';
const PROD = 'spiffe://example.org/node/prod';

const entry = (id: string, spiffeId: string, parentId: string, selector: string): Entry => {
  const [type = '', ...value] = selector.split(':');
  return {
    id,
    spiffeId,
    parentId,
    selectors: [{ type, value: value.join(':') }],
    x509SvidTtl: 3600,
    jwtSvidTtl: 300,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    expiresAt: null,
    hint: '',
    revision: 1,
    createdAt: 0,
  };
};

const node = (env: string, over: Partial<AttestedNode> = {}): AttestedNode => ({
  spiffeId: AGENT,
  attestationType: 'aws_iid',
  serialNumber: '01',
  newSerialNumber: '',
  expiresAt: Number.MAX_SAFE_INTEGER,
  selectors: [
    { type: 'aws_iid', value: 'region:eu-west-1' },
    { type: 'aws_iid', value: `tag:env:${env}` },
  ],
  banned: false,
  canReattest: true,
  createdAt: 0,
  updatedAt: 0,
  ...over,
});

describe('node fingerprint', () => {
  it('depends on the facts conditions read, not on serials or selector order', () => {
    const a = node('prod');
    assert.equal(nodeFingerprint(a), nodeFingerprint(node('prod', { serialNumber: '02' })));
    assert.equal(
      nodeFingerprint(a),
      nodeFingerprint({ ...a, selectors: [...a.selectors].reverse() }),
    );
    assert.notEqual(nodeFingerprint(a), nodeFingerprint(node('dev')));
    assert.notEqual(nodeFingerprint(a), nodeFingerprint({ ...a, attestationType: 'x' }));
    assert.ok(nodeFingerprint(a) > 0n);
  });
});

describe('AgentSync: the node record', () => {
  it('sends a new fingerprint and the alias entries of the new selectors; a ban ends it', async () => {
    const index = new EntryIndex(SERVER);
    // A node alias for env=prod nodes and a workload under it; one workload under the agent.
    index.upsert(entry('alias', PROD, SERVER, 'aws_iid:tag:env:prod'));
    index.upsert(entry('w-prod', 'spiffe://example.org/prod-app', PROD, 'unix:uid:0'));
    index.upsert(entry('w-own', 'spiffe://example.org/app', AGENT, 'unix:uid:0'));
    let stored: AttestedNode | null = node('prod');
    const noBundles = { bundles: { get: async () => null, list: async () => [] } };
    const sync = new AgentSync({
      svids: {
        authorizedEntries: (n) =>
          index.authorizedFor(n.spiffeId, new Set(n.selectors.map(formatSelector)), 0),
      },
      index,
      bundles: new BundleCache(noBundles as never, 'example.org'),
      federated: new FederatedBundleCache(noBundles as never, 'example.org'),
      nodes: { get: async () => stored },
    });
    const ac = new AbortController();
    const stream = sync.stream({ spiffeId: AGENT, node: node('prod') }, {}, ac.signal);
    const next = async (): Promise<SyncOut> => {
      const r = await stream.next();
      assert.equal(r.done, false);
      return r.value as SyncOut;
    };
    const first = await next();
    assert.equal(first.nodeFingerprint, nodeFingerprint(node('prod')));
    assert.deepEqual(first.upserted?.map((e) => e.id).sort(), ['w-own', 'w-prod']);

    // A renewal changes the record but not its facts: nothing is sent for it.
    stored = node('prod', { serialNumber: '02' });
    index.notifyNodes([AGENT]);
    // Re-attested with env=dev: the new fingerprint, and the prod alias's entries go.
    stored = node('dev', { serialNumber: '03' });
    index.notifyNodes([AGENT]);
    const changed = await next();
    assert.equal(changed.nodeFingerprint, nodeFingerprint(node('dev')));
    assert.deepEqual(changed.removed?.sort(), ['w-prod']);
    assert.equal(changed.accessRevision, undefined);

    // Another agent's record changing is not this stream's business; a ban ends it.
    index.notifyNodes(['spiffe://example.org/spire/agent/x']);
    stored = node('dev', { banned: true });
    index.notifyNodes([AGENT]);
    await assert.rejects(stream.next(), /is banned/);
    ac.abort();
  });

  it('ends a stream whose SVID the node moved on from (renewed, or another holder attested); a pending renewal keeps it', async () => {
    const index = new EntryIndex(SERVER);
    let stored: AttestedNode | null = node('prod');
    const noBundles = { bundles: { get: async () => null, list: async () => [] } };
    const sync = new AgentSync({
      svids: { authorizedEntries: () => [] },
      index,
      bundles: new BundleCache(noBundles as never, 'example.org'),
      federated: new FederatedBundleCache(noBundles as never, 'example.org'),
      nodes: { get: async () => stored },
    });
    const ac = new AbortController();
    const stream = sync.stream(
      { spiffeId: AGENT, node: node('prod'), serial: '01' },
      {},
      ac.signal,
    );
    await stream.next();
    // Renewed, the new SVID not used yet: the stream's SVID is still the node's current one.
    stored = node('prod', { newSerialNumber: '02' });
    index.notifyNodes([AGENT]);
    // Then the new serial is in use (or another holder attested as this node): the stream ends,
    // Unavailable, for the agent to reconnect with its current SVID.
    stored = node('prod', { serialNumber: '02' });
    index.notifyNodes([AGENT]);
    await assert.rejects(stream.next(), (e: Error) => {
      assert.equal(e.name, 'UnavailableError');
      assert.match(e.message, /no longer current; reconnect/);
      return true;
    });
    ac.abort();
  });
});
