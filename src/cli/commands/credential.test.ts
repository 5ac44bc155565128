// `tessera credential get` against the agent's credential API on a real socket (this process
// attested by the kernel), the real cache and service, the server side scripted.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../testing/harness.ts';
import {
  released,
  startSocket,
  testEntry,
  UID,
  world,
  type Socket,
  type World,
} from '../../agent/credentials/testing/fixtures.ts';

const WEB = 'spiffe://example.org/web';

describe('tessera credential get', () => {
  let w: World;
  let s: Socket;
  const cli = (...args: string[]) =>
    runCli(['credential', 'get', '--workload-socket', s.socketPath, ...args]);
  before(async () => {
    w = world([testEntry('e-web', WEB, [`unix:uid:${UID}`])]);
    s = await startSocket(w, true);
  });
  after(() => s.stop());

  it('prints the credential and its expiry', async () => {
    w.server.answer = async (p) => released(p, 'tok-abc', Date.UTC(2030, 0, 1));
    const r = await cli('--server', 'db');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^SPIFFE ID: +spiffe:\/\/example\.org\/web$/m);
    assert.match(r.stdout, /^token: +tok-abc$/m);
    assert.match(r.stdout, /^expires at: +2030-01-01T00:00:00\.000Z$/m);
    const j = await cli('--server', 'db', '--output', 'json');
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), {
      spiffeId: WEB,
      serverWorkload: 'db',
      token: 'tok-abc',
      expiresAt: '2030-01-01T00:00:00.000Z',
      present: 'authorization-bearer',
      leaseId: '',
      correlationId: w.server.asks[0]?.correlationId,
    });
  });

  it('prints a username and password, and "never" for a static credential', async () => {
    w.server.answer = async (p) => {
      const r = released(p, '', null);
      if (r.kind !== 'released') throw new Error('unreachable');
      return {
        kind: 'released',
        released: {
          ...r.released,
          credential: {
            value: { kind: 'password', username: 'app', password: 'pw-1' },
            expiresAt: null,
            leaseId: '',
          },
        },
      };
    };
    const r = await cli('--server', 'pg', '--spiffe-id', WEB);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^username: +app$/m);
    assert.match(r.stdout, /^password: +pw-1$/m);
    assert.match(r.stdout, /^expires at: +never$/m);
  });

  it('on a denial prints the reason, policy and condition and exits 5', async () => {
    w.server.answer = async () => ({
      kind: 'denied',
      denial: {
        reason: 'condition-false',
        policy: 'web-db',
        failedCondition: 'client.attributes["unix.uid"] == "0"',
        correlationId: 'corr-7',
      },
    });
    const r = await cli('--server', 'denied-db');
    assert.equal(r.code, 5);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `error: access to server workload "denied-db" denied for ${WEB}: condition-false (policy "web-db", failed condition: client.attributes["unix.uid"] == "0")\n`,
    );
    const j = await cli('--server', 'denied-db', '--output', 'json');
    assert.equal(j.code, 5);
    assert.deepEqual(JSON.parse(j.stdout), {
      denied: true,
      serverWorkload: 'denied-db',
      reason: 'condition-false',
      policy: 'web-db',
      failedCondition: 'client.attributes["unix.uid"] == "0"',
      correlationId: 'corr-7',
      message: `access to server workload "denied-db" denied for ${WEB}: condition-false (policy "web-db", failed condition: client.attributes["unix.uid"] == "0")`,
    });
  });

  it('requires --server and says when no agent listens', async () => {
    const r = await runCli(['credential', 'get', '--workload-socket', s.socketPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--server <name>/);
    const none = await runCli([
      'credential',
      'get',
      '--server',
      'db',
      '--workload-socket',
      '/nonexistent/agent.sock',
    ]);
    assert.equal(none.code, 6);
    assert.match(none.stderr, /no agent is listening on \/nonexistent\/agent\.sock/);
  });
});
