import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTokenCheck } from '../../control-plane/auth.js';

test('bearer token check: ok, missing, wrong (any length, never throws)', () => {
  const check = makeTokenCheck('correct-horse-battery');
  assert.equal(check('Bearer correct-horse-battery'), 'ok');
  assert.equal(check('bearer   correct-horse-battery '), 'ok');
  assert.equal(check(undefined), 'missing');
  assert.equal(check(''), 'missing');
  assert.equal(check('Basic correct-horse-battery'), 'missing');
  // timingSafeEqual throws on unequal lengths; comparing digests makes every length safe.
  for (const guess of ['c', 'correct-horse-batter', 'correct-horse-batteryX', 'x'.repeat(21), 'x'.repeat(10_000), 'correct-horse-battery\u00e9']) {
    assert.equal(check(`Bearer ${guess}`), 'wrong', guess.slice(0, 30));
  }
});
