import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from './errors.ts';
import { disclosedAttributes, validateDisclose } from './disclosure.ts';

const facts = {
  binary: { sha256: 'sha256:ab' },
  libraries: [{ path: '/lib/libc.so.6', sha256: 'sha256:cd' }],
  kernel: { release: '6.8.0' },
  image: { digest: '' },
  node: {
    id: 'spiffe://td/spire/agent/x',
    attestor: 'aws_iid',
    region: 'eu-west-1',
    tags: { env: 'prod' },
  },
  posture: { scanned: true, critical: 2n, scanner: 'trivy' },
};

describe('validateDisclose', () => {
  it('accepts known paths, groups and node keys; drops duplicates', () => {
    assert.deepEqual(validateDisclose(['image.digest', 'posture', 'node.region', 'posture']), [
      'image.digest',
      'posture',
      'node.region',
    ]);
    assert.deepEqual(validateDisclose(undefined), []);
  });
  it('refuses an unknown path, naming it', () => {
    assert.throws(() => validateDisclose(['image.digets']), {
      name: InvalidArgumentError.name,
      message: /^disclose: unknown attribute "image\.digets"/,
    });
    assert.throws(() => validateDisclose(['posture.nope']), /unknown attribute "posture\.nope"/);
    assert.throws(() => validateDisclose(['__proto__']), /unknown attribute/);
    assert.throws(() => validateDisclose(['node.Region']), /unknown attribute/);
  });
  it('bounds the list', () => {
    const many = Array.from({ length: 33 }, (_, i) => `node.k${i}`);
    assert.throws(() => validateDisclose(many), /at most 32 paths/);
  });
});

describe('disclosedAttributes', () => {
  it('nests exactly the disclosed paths; bigint counts become numbers', () => {
    assert.deepEqual(
      disclosedAttributes(facts, ['posture.critical', 'node.region', 'node.tags', 'image.digest']),
      {
        posture: { critical: 2 },
        node: { region: 'eu-west-1', tags: { env: 'prod' } },
        image: { digest: '' },
      },
    );
  });
  it('a whole group and its leaf together give the group', () => {
    assert.deepEqual(disclosedAttributes(facts, ['kernel', 'kernel.release']), {
      kernel: { release: '6.8.0' },
    });
  });
  it('leaves out what the workload has no value for, and everything not disclosed', () => {
    assert.deepEqual(disclosedAttributes(facts, ['node.zone']), {});
    assert.deepEqual(disclosedAttributes(facts, []), {});
  });
});
