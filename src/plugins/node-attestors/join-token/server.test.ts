import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { PermissionDeniedError } from '../../../core/errors.ts';
import { openStore } from '../../../store/open.ts';
import type { Store } from '../../../store/types.ts';
import type { ChallengeFn } from '../node-attestor.ts';
import {
  JOIN_TOKEN_TYPE,
  createJoinTokenAttestor,
  hashJoinToken,
  joinTokenAgentSegment,
} from './server.ts';

const TOKEN = 'tok_0123456789abcdefABCDEF-xyz';
const noChallenge: ChallengeFn = async () => {
  throw new Error('join_token must not send a challenge');
};
const bytes = (s: string) => new TextEncoder().encode(s);

describe('join_token attestor', () => {
  it('has the join_token type', () => {
    assert.equal(createJoinTokenAttestor({ consume: async () => null }).type, JOIN_TOKEN_TYPE);
    assert.equal(JOIN_TOKEN_TYPE, 'join_token');
  });

  it('rejects a malformed token without consulting the store', async () => {
    const asked: string[] = [];
    const attestor = createJoinTokenAttestor({
      consume: async (h) => {
        asked.push(h);
        return { spiffeId: '' };
      },
    });
    for (const bad of [
      '',
      'short',
      'x'.repeat(129),
      'has space in it 123',
      'tok/with/slash123',
      'töken-0123456789ab',
    ]) {
      await assert.rejects(attestor.attest(bytes(bad), noChallenge), (e: unknown) => {
        assert.ok(e instanceof PermissionDeniedError);
        assert.equal(e.message, 'join token is malformed');
        return true;
      });
    }
    assert.deepEqual(asked, []);
  });

  it('denies a token the store does not hand out', async () => {
    const attestor = createJoinTokenAttestor({ consume: async () => null });
    await assert.rejects(attestor.attest(bytes(TOKEN), noChallenge), {
      name: 'AgentRefusedError',
      code: 'permission_denied',
      reason: 'join_token_rejected',
      message: 'join token does not exist, has expired or was already used',
    });
  });

  it('consumes by sha256 hash and derives the agent segment from the hash', async () => {
    const asked: string[] = [];
    const attestor = createJoinTokenAttestor({
      consume: async (h) => {
        asked.push(h);
        return { spiffeId: '' };
      },
    });
    const result = await attestor.attest(bytes(TOKEN), noChallenge);
    const hash = createHash('sha256').update(TOKEN).digest('hex');
    assert.deepEqual(asked, [hash]);
    assert.equal(hashJoinToken(TOKEN), hash);
    assert.equal(joinTokenAgentSegment(TOKEN), hash.slice(0, 32));
    assert.deepEqual(result, {
      idSegments: [hash.slice(0, 32)],
      selectors: [],
      canReattest: false,
    });
    assert.ok(!JSON.stringify(result).includes(TOKEN), 'the secret never appears in the result');
  });

  it('passes through an operator-bound SPIFFE ID', async () => {
    const attestor = createJoinTokenAttestor({
      consume: async () => ({ spiffeId: 'spiffe://example.org/spire/agent/custom/n1' }),
    });
    const result = await attestor.attest(bytes(TOKEN), noChallenge);
    assert.equal(result.spiffeId, 'spiffe://example.org/spire/agent/custom/n1');
    assert.equal(result.canReattest, false);
  });
});

describe('join_token attestor on a real SQLite store', () => {
  let dir = '';
  let store: Store;
  const clock = new ManualClock(Date.UTC(2030, 0, 1));

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-join-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db.sqlite3') }, clock);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const attestor = () =>
    createJoinTokenAttestor({ consume: (h) => store.joinTokens.consume(h, clock.now()) });

  it('admits a token once', async () => {
    const token = 'single-use-token-0001';
    await store.joinTokens.create({
      tokenHash: hashJoinToken(token),
      spiffeId: '',
      expiresAt: clock.now() + 600_000,
      createdAt: clock.now(),
    });
    const first = await attestor().attest(bytes(token), noChallenge);
    assert.deepEqual(first.idSegments, [joinTokenAgentSegment(token)]);
    await assert.rejects(attestor().attest(bytes(token), noChallenge), {
      name: 'AgentRefusedError',
      code: 'permission_denied',
      reason: 'join_token_rejected',
      message: 'join token does not exist, has expired or was already used',
    });
  });

  it('lets exactly one of two concurrent agents win a token', async () => {
    const token = 'raced-token-00000002';
    await store.joinTokens.create({
      tokenHash: hashJoinToken(token),
      spiffeId: '',
      expiresAt: clock.now() + 600_000,
      createdAt: clock.now(),
    });
    const results = await Promise.allSettled([
      attestor().attest(bytes(token), noChallenge),
      attestor().attest(bytes(token), noChallenge),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  });

  it('denies an expired token', async () => {
    const token = 'expired-token-000003';
    await store.joinTokens.create({
      tokenHash: hashJoinToken(token),
      spiffeId: '',
      expiresAt: clock.now() + 1000,
      createdAt: clock.now(),
    });
    clock.advance(1000);
    await assert.rejects(attestor().attest(bytes(token), noChallenge), {
      name: 'AgentRefusedError',
      code: 'permission_denied',
      reason: 'join_token_rejected',
      message: 'join token does not exist, has expired or was already used',
    });
  });
});
