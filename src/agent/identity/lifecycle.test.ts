// The lifecycle's answers to a refusal, decided by the reason code the server sent (never by
// message text): stop when banned or out of evidence, attest when it still can, and ignore a
// refusal of an identity that was already replaced. The server is an unreachable address, so an
// attestation attempt fails as Unavailable (and is retried later, not fatal).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import pino from 'pino';
import { ManualClock } from '../../core/clock.ts';
import { REFUSAL_REASON_KEY, type RefusalReason } from '../../core/refusal.ts';
import { type AgentIdentity, AgentStateDir } from './agent-identity.ts';
import { AgentLifecycle } from './lifecycle.ts';
import {
  type AgentNodeAttestor,
  createAgentNodeAttestor,
} from '../../plugins/node-attestors/catalog.ts';
import { AgentFatalError, ServerLink } from './server-link.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(attestor: AgentNodeAttestor | null) {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-lifecycle-'));
  dirs.push(dir);
  const state = new AgentStateDir(dir);
  // Port 1 on loopback: nothing listens, a dial is refused at once.
  const link = new ServerLink({ addresses: ['127.0.0.1:1'], trustDomain: 'example.org', state });
  link.restore(null, [], false);
  let logged = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logged += chunk.toString();
      cb();
    },
  });
  const lifecycle = new AgentLifecycle({
    link,
    state,
    attestor,
    clock: { now: () => Date.now() },
    log: pino({ level: 'info' }, sink),
    insecureBootstrap: false,
    maxBackoffMs: 1000,
    bootstrapBundle: async () => [],
    onTick: async () => {},
  });
  return { lifecycle, link, log: () => logged };
}

/** The join_token agent half, through the catalog as the agent builds it. */
const joinToken = () => createAgentNodeAttestor({ join_token: 't'.repeat(32) });

function refusal(reason: RefusalReason | null, message: string): ConnectError {
  return new ConnectError(
    message,
    Code.PermissionDenied,
    reason ? { [REFUSAL_REASON_KEY]: reason } : {},
  );
}

describe('agent lifecycle: refusals', () => {
  it('stops for good when banned, even with an attestor that could attest', async () => {
    const { lifecycle } = setup(await joinToken());
    await lifecycle.refused(refusal('agent_banned', 'agent X is banned'), null);
    assert.ok(lifecycle.stopped.aborted);
    assert.ok(lifecycle.fatal instanceof AgentFatalError);
    assert.equal(lifecycle.fatal.message, 'the server refused this agent: agent X is banned');
  });

  it('acts on the code, not the text: a message saying "banned" with reason agent_unknown attests', async () => {
    const { lifecycle, log } = setup(await joinToken());
    await lifecycle.refused(refusal('agent_unknown', 'banned words in a message'), null);
    assert.equal(lifecycle.fatal, null);
    assert.equal(lifecycle.stopped.aborted, false);
    assert.match(log(), /"why":"refused: agent_unknown","msg":"attesting to the server"/);
    assert.match(log(), /re-attestation failed; will retry/);
  });

  it('with no attestor, an unknown agent stops, saying how to attest again', async () => {
    const { lifecycle } = setup(null);
    await lifecycle.refused(refusal('agent_unknown', 'agent X is not attested (evicted?)'), null);
    assert.equal(
      lifecycle.fatal?.message,
      'the server refused this agent: agent X is not attested (evicted?); start the agent with a new --join-token (or configure x509pop) to attest again',
    );
  });

  it('ignores a refusal of an identity that was already replaced', async () => {
    const { lifecycle, link, log } = setup(null);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const replaced: AgentIdentity = {
      spiffeId: 'spiffe://example.org/spire/agent/x/old',
      chainDer: [],
      key: privateKey,
      notBefore: 0,
      expiresAt: 0,
      serialHex: '01',
    };
    assert.notEqual(link.identity, replaced);
    await lifecycle.refused(refusal('agent_banned', 'agent X is banned'), replaced);
    assert.equal(lifecycle.fatal, null);
    assert.equal(log(), '');
  });

  it('a refusal without a reason code (an older server) is treated as unknown', async () => {
    const { lifecycle } = setup(null);
    await lifecycle.refused(refusal(null, 'no'), null);
    assert.match(lifecycle.fatal?.message ?? '', /^the server refused this agent: no; start/);
  });
});

describe('agent lifecycle: renewal', () => {
  it('renews its SVID at half of the life left on arrival, not of the backdated notBefore', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-lifecycle-'));
    dirs.push(dir);
    const T = 1_800_000_000_000;
    const clock = new ManualClock(T);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    // A 6 s agent SVID, backdated 10 s as the server issues it.
    const issued = (): AgentIdentity => ({
      spiffeId: 'spiffe://example.org/spire/agent/join_token/a',
      chainDer: [],
      key: privateKey,
      notBefore: clock.now() - 10_000,
      expiresAt: clock.now() + 6_000,
      serialHex: '01',
    });
    let identity: AgentIdentity | null = null;
    let renewals = 0;
    // Only what the lifecycle uses of its link: attest and renew hand out a new SVID.
    const link = {
      get identity() {
        return identity;
      },
      bundle: [],
      down: false,
      async resolveAddresses() {},
      restore() {},
      async attest() {
        return (identity = issued());
      },
      async renew() {
        renewals++;
        return (identity = issued());
      },
    } as unknown as ServerLink;
    let ticked = Promise.withResolvers<void>();
    const lifecycle = new AgentLifecycle({
      link,
      state: new AgentStateDir(dir),
      attestor: await joinToken(),
      clock,
      log: pino({ level: 'silent' }),
      insecureBootstrap: false,
      maxBackoffMs: 1000,
      bootstrapBundle: async () => [],
      onTick: async () => ticked.resolve(),
    });
    const ac = new AbortController();
    await lifecycle.bootstrap(ac.signal);
    assert.equal(identity, link.identity);
    const running = lifecycle.maintain(ac.signal);
    // Each step waits for the next tick (once a second) to have seen the clock.
    const tickAt = async (ms: number) => {
      ticked = Promise.withResolvers<void>();
      clock.set(ms);
      await ticked.promise;
    };
    try {
      await tickAt(T + 2_999);
      assert.equal(renewals, 0, 'not renewed before half of its 6 s');
      await tickAt(T + 3_000);
      assert.equal(renewals, 1, 'renewed at half of its 6 s');
      // The renewed SVID arrived at T + 3 s: its half-life is T + 6 s.
      await tickAt(T + 5_999);
      assert.equal(renewals, 1);
      await tickAt(T + 6_000);
      assert.equal(renewals, 2);
    } finally {
      ac.abort();
      await running;
    }
    assert.equal(lifecycle.fatal, null);
  });
});
