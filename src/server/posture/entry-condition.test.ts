// Entry conditions over workload facts: compile errors name the problem; posture, image and node
// facts as conditions read them; the same facts under `client` in access conditions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../../core/entry.ts';
import type { PostureReport } from '../../core/posture.ts';
import {
  compileAccessCondition,
  conditionInput,
  evaluateAccessCondition,
} from '../access/access-condition.ts';
import { compileEntryCondition, evaluateEntryCondition } from './entry-condition.ts';
import { PostureIndex } from './posture-index.ts';
import { workloadFacts } from './workload-facts.ts';

const BIN = `sha256:${'ab'.repeat(32)}`;
const IMG = `sha256:${'cd'.repeat(32)}`;
const report = (subject: string, critical: number): PostureReport => ({
  subject,
  kind: 'binary',
  artifact: '',
  scanner: 'trivy',
  counts: { critical, high: 0, medium: 0, low: 0, unknown: 0 },
  fixable: critical,
  scannedAt: 1_700_000_000_000,
  importVersion: 1,
  importedAt: 1_700_000_000_000,
});
const entry = (condition: string, revision = 1) => ({ id: 'e1', revision, condition }) as Entry;
const node = {
  spiffeId: 'spiffe://example.org/spire/agent/aws_iid/1/eu-west-1/i-1',
  attestationType: 'aws_iid',
  selectors: [
    { type: 'aws_iid', value: 'region:eu-west-1' },
    { type: 'aws_iid', value: 'tag:env:prod' },
  ],
};

describe('entry conditions', () => {
  it('refuses bad conditions, naming the problem', () => {
    assert.throws(
      () => compileEntryCondition('posture.critical =='),
      /^InvalidArgumentError: condition: /,
    );
    assert.throws(() => compileEntryCondition('workload.x == 1'), /condition: /);
    assert.throws(
      () => compileEntryCondition('"a"'),
      /condition: must evaluate to bool, not string/,
    );
  });

  it('an unscanned workload has posture.scanned == false and zero counts', () => {
    const facts = workloadFacts({ 'binary.sha256': BIN }, node, PostureIndex.of([]));
    assert.deepEqual(evaluateEntryCondition(entry('posture.critical == 0'), facts), {
      allowed: true,
    });
    assert.equal(evaluateEntryCondition(entry('posture.scanned'), facts).allowed, false);
  });

  it('reads posture by binary or image, the worst of both, and node facts', () => {
    const index = PostureIndex.of([report(BIN, 0), report(IMG, 2)]);
    const facts = workloadFacts({ 'binary.sha256': BIN, 'image.digest': IMG }, node, index);
    const v = evaluateEntryCondition(
      entry("posture.critical == 0 && image.digest.startsWith('sha256:')"),
      facts,
    );
    assert.deepEqual(v, { allowed: false, reason: 'condition not met: posture.critical == 0' });
    assert.equal(
      evaluateEntryCondition(
        entry(
          'node.region == "eu-west-1" && node.tags["env"] == "prod" && node.attestor == "aws_iid"',
          2,
        ),
        facts,
      ).allowed,
      true,
    );
  });

  it('access conditions see the same facts under client', () => {
    const facts = workloadFacts({ 'binary.sha256': BIN }, node, PostureIndex.of([report(BIN, 1)]));
    const c = compileAccessCondition('client.posture.critical == 0')!;
    const req = {
      client: { spiffeId: 'spiffe://example.org/a', selectors: [], attributes: {}, facts },
      server: 's',
      at: 0,
    };
    const id = { text: 'spiffe://example.org/a', trustDomain: 'example.org', path: '/a' };
    assert.equal(evaluateAccessCondition(c, conditionInput(req, id, c.needs)).holds, false);
    const ok = {
      ...req,
      client: { ...req.client, facts: workloadFacts({}, node, PostureIndex.of([])) },
    };
    assert.equal(evaluateAccessCondition(c, conditionInput(ok, id, c.needs)).holds, true);
  });
});
