import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configFromFile, configFromSets } from './provider-config.ts';

describe('credential provider config from flags', () => {
  it('--set: dotted keys nest; true/false and integers converted, the rest strings', () => {
    assert.deepEqual(
      configFromSets([
        'secret=db-pass',
        'format=username-password',
        'pool.max=10',
        'pool.tls=true',
        'pool.name=007x',
        'neg=-3',
        'eq=a=b',
        'big=99999999999999999999',
      ]),
      {
        secret: 'db-pass',
        format: 'username-password',
        pool: { max: 10, tls: true, name: '007x' },
        neg: -3,
        eq: 'a=b',
        big: '99999999999999999999',
      },
    );
  });

  it('--set: malformed, repeated and conflicting keys are refused', () => {
    assert.throws(() => configFromSets(['novalue']), {
      message: '--set: "novalue" is not key=value',
    });
    assert.throws(() => configFromSets(['=x']), { message: '--set: "=x" is not key=value' });
    assert.throws(() => configFromSets(['a..b=1']), /is not a key/);
    assert.throws(() => configFromSets(['__proto__.x=1']), /is not a key/);
    assert.throws(() => configFromSets(['a=1', 'a=2']), { message: '--set: "a" is set twice' });
    assert.throws(() => configFromSets(['a=1', 'a.b=2']), {
      message: '--set: "a.b" conflicts with "a" set to a value',
    });
    assert.throws(() => configFromSets(['a.b=1', 'a=2']), { message: '--set: "a" is set twice' });
  });

  it('--config: YAML or JSON mapping, bounded', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-pcfg-'));
    try {
      const y = path.join(dir, 'c.yaml');
      await writeFile(y, 'audience:\n  - orders\nttl: 5m\n');
      assert.deepEqual(await configFromFile(y), { audience: ['orders'], ttl: '5m' });
      const j = path.join(dir, 'c.json');
      await writeFile(j, '{"secret": "x"}');
      assert.deepEqual(await configFromFile(j), { secret: 'x' });
      const list = path.join(dir, 'l.yaml');
      await writeFile(list, '- a\n');
      await assert.rejects(configFromFile(list), {
        message: `--config: ${list} must hold a mapping of config keys`,
      });
      const bad = path.join(dir, 'b.yaml');
      await writeFile(bad, 'a: [\n');
      await assert.rejects(configFromFile(bad), /is not valid YAML or JSON/);
      const big = path.join(dir, 'big.yaml');
      await writeFile(big, '#'.repeat(256 * 1024 + 1));
      await assert.rejects(configFromFile(big), {
        message: `--config: ${big} is larger than 256 KiB`,
      });
      await assert.rejects(configFromFile(path.join(dir, 'none')), {
        name: 'TesseraError',
        code: 'not_found',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
