import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccessPolicy, ServerWorkload } from '../../core/access.ts';
import { UnavailableError } from '../../core/errors.ts';
import { CommitNotifier } from '../../store/sql/commit-notifier.ts';
import { PolicyDecider, type AccessPolicySource } from './decider.ts';
import { allow, deny, request, server } from './testing/fixtures.ts';

const WEB = 'spiffe://td/ns/prod/sa/web';

/** A source over arrays the test changes, counting reads; `fail` makes the next reads throw. */
class ArraySource implements AccessPolicySource {
  servers: ServerWorkload[] = [server('db')];
  policies: AccessPolicy[] = [];
  reads = 0;
  fail = false;
  gate: Promise<void> | null = null;
  async listServerWorkloads() {
    return [...this.servers];
  }
  async listPolicies() {
    this.reads++;
    if (this.gate) await this.gate;
    if (this.fail) throw new Error('database is down');
    return [...this.policies];
  }
}

function logSink() {
  const lines: string[] = [];
  return {
    lines,
    log: {
      warn: (f: Record<string, unknown>, msg: string) => lines.push(`${msg} ${JSON.stringify(f)}`),
    },
  };
}

async function setup() {
  const source = new ArraySource();
  source.policies = [allow('web', WEB)];
  const notifier = new CommitNotifier();
  const { lines, log } = logSink();
  const decider = await PolicyDecider.create({ source, notifications: notifier, log });
  return { source, notifier, decider, lines };
}

describe('PolicyDecider', () => {
  it('decides over the loaded set and follows the access topic; sync() sees a change at once', async () => {
    const { source, notifier, decider } = await setup();
    assert.equal(decider.decide(request(WEB)).allowed, true);
    source.policies = [];
    notifier.deliver('access', 'local'); // what the store does after the delete commits
    await decider.sync();
    assert.equal(decider.decide(request(WEB)).reason, 'no-matching-policy');
    notifier.deliver('changes', 'local'); // other topics are not followed
    await decider.sync();
    assert.equal(source.reads, 2);
  });

  it('coalesces a burst of announcements into the reload in progress plus one', async () => {
    const { source, notifier, decider } = await setup();
    let open!: () => void;
    source.gate = new Promise((r) => (open = r));
    for (let i = 0; i < 50; i++) notifier.deliver('access', i % 2 ? 'local' : 'remote');
    const synced = decider.sync();
    source.policies = [deny('no', 'spiffe://td')];
    source.gate = null;
    open();
    await synced;
    assert.equal(source.reads, 3); // create, the first reload, one follow-up for the rest
    assert.equal(decider.decide(request(WEB)).reason, 'denied-by-policy');
  });

  it('keeps serving the last complete index while a reload is in progress', async () => {
    const { source, notifier, decider } = await setup();
    let open!: () => void;
    source.gate = new Promise((r) => (open = r));
    source.policies = [];
    notifier.deliver('access', 'local');
    assert.equal(decider.decide(request(WEB)).allowed, true); // old set, complete
    open();
    await decider.sync();
    assert.equal(decider.decide(request(WEB)).allowed, false);
  });

  it('a failed reload keeps the old index, logs, and makes sync() reject until a reload succeeds', async () => {
    const { source, notifier, decider, lines } = await setup();
    source.fail = true;
    notifier.deliver('access', 'local');
    await assert.rejects(decider.sync(), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.equal(e.message, 'access policies could not be reloaded');
      return true;
    });
    assert.equal(decider.decide(request(WEB)).allowed, true);
    assert.match(lines.join('\n'), /could not be reloaded.*database is down/);
    source.fail = false;
    await decider.refresh();
    await decider.sync();
  });

  it('a policy that no longer compiles is skipped and logged, the rest still decide', async () => {
    const { source, notifier, decider, lines } = await setup();
    source.policies = [
      allow('web', WEB),
      allow('broken', 'spiffe://td', { condition: 'now.hour <' }),
    ];
    notifier.deliver('access', 'local');
    await decider.sync();
    assert.equal(decider.decide(request(WEB)).allowed, true);
    assert.equal(decider.stats.policies, 1);
    assert.match(lines.join('\n'), /access policy skipped.*"policy":"broken"/);
  });

  it('create() fails when the first read fails; run() polls and stops on abort', async () => {
    const source = new ArraySource();
    source.fail = true;
    const { log } = logSink();
    await assert.rejects(PolicyDecider.create({ source, log }), /database is down/);
    source.fail = false;
    const decider = await PolicyDecider.create({ source, log, pollIntervalMs: 5 });
    const ac = new AbortController();
    const running = decider.run(ac.signal);
    source.policies = [allow('web', WEB)];
    // Bounded polling for the poll's effect; no fixed sleep decides the outcome.
    for (let i = 0; i < 2000 && !decider.decide(request(WEB)).allowed; i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(decider.decide(request(WEB)).allowed, true);
    ac.abort();
    await running;
  });
});
