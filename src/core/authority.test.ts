import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rotationThresholds } from './authority.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('rotationThresholds', () => {
  it('prepares at life/2 left and activates at life/6 left', () => {
    const notBefore = 1_000_000;
    const notAfter = notBefore + 24 * HOUR;
    assert.deepEqual(rotationThresholds({ notBefore, notAfter }), {
      prepareAt: notAfter - 12 * HOUR,
      activateAt: notAfter - 4 * HOUR,
    });
  });

  it('caps the prepare lead at 30 days and the activate lead at 7 days', () => {
    const notBefore = 0;
    const notAfter = 365 * DAY;
    assert.deepEqual(rotationThresholds({ notBefore, notAfter }), {
      prepareAt: notAfter - 30 * DAY,
      activateAt: notAfter - 7 * DAY,
    });
  });

  it('applies the caps independently', () => {
    // 60 days: life/2 = 30d (at the cap), life/6 = 10d (capped to 7d).
    assert.deepEqual(rotationThresholds({ notBefore: 0, notAfter: 60 * DAY }), {
      prepareAt: 30 * DAY,
      activateAt: 53 * DAY,
    });
    // 36 days: life/2 = 18d and life/6 = 6d, both under their caps.
    assert.deepEqual(rotationThresholds({ notBefore: 0, notAfter: 36 * DAY }), {
      prepareAt: 18 * DAY,
      activateAt: 30 * DAY,
    });
    // 90 days: prepare capped at 30d, activate capped at 7d.
    assert.deepEqual(rotationThresholds({ notBefore: 0, notAfter: 90 * DAY }), {
      prepareAt: 60 * DAY,
      activateAt: 83 * DAY,
    });
  });

  it('always prepares before it activates', () => {
    for (const life of [HOUR, DAY, 10 * DAY, 100 * DAY, 1000 * DAY]) {
      const t = rotationThresholds({ notBefore: 0, notAfter: life });
      assert.ok(t.prepareAt < t.activateAt, `life ${life}`);
      assert.ok(t.activateAt < life);
    }
  });
});
