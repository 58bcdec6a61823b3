import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyWeightsUpdate, FileWeightsStore, profileOf, WEIGHT_PROFILES } from '../../control-plane/weights.js';

const cur = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };

test('profiles match the documented weights', () => {
  assert.deepEqual(WEIGHT_PROFILES.default.weights, { prefix: 3, queue: 1, kvCache: 1, inflight: 1 });
  assert.deepEqual(WEIGHT_PROFILES.latency.weights, { prefix: 5, queue: 1, kvCache: 1, inflight: 1 });
  assert.deepEqual(WEIGHT_PROFILES.throughput.weights, { prefix: 1, queue: 3, kvCache: 2, inflight: 1 });
  assert.deepEqual(WEIGHT_PROFILES.capacity.weights, { prefix: 1, queue: 1, kvCache: 5, inflight: 1 });
  assert.equal(profileOf({ prefix: 5, queue: 1, kvCache: 1, inflight: 1 }), 'latency');
  assert.equal(profileOf({ prefix: 5, queue: 1, kvCache: 1, inflight: 2 }), null);
});

test('updates: partial merge, profile, and refusals naming the field', () => {
  const ok = applyWeightsUpdate({ kvCache: 0 }, cur);
  assert.ok(ok.ok && ok.record.weights.kvCache === 0 && ok.record.weights.prefix === 3);
  const p = applyWeightsUpdate({ profile: 'default' }, { ...cur, prefix: 9 });
  assert.ok(p.ok && p.record.profile === 'default' && p.record.weights.prefix === 3);
  const bad: Array<[unknown, string]> = [
    [null, '(body)'], ['x', '(body)'], [[], '(body)'], [{}, '(body)'], [{ foo: 1 }, 'foo'], [{ prefix: Infinity }, 'prefix'],
    [{ queue: -0.1 }, 'queue'], [{ kvCache: true }, 'kvCache'], [{ inflight: 4e38 }, 'inflight'], [{ profile: 3 }, 'profile'],
    [{ profile: 'toString' }, 'profile'], [{ profile: 'latency', queue: 1 }, 'profile'],
    [{ prefix: 0, queue: 0, kvCache: 0, inflight: 0 }, '(weights)'],
  ];
  for (const [body, field] of bad) {
    const r = applyWeightsUpdate(body, cur);
    assert.equal(r.ok, false, JSON.stringify(body));
    if (!r.ok) assert.equal(r.field, field, JSON.stringify(body));
  }
});

test('file store: missing file is "nothing stored"; writes leave no temp files; bad content is an error naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-wstore-'));
  try {
    const file = join(dir, 'w.json');
    const s = new FileWeightsStore(file);
    assert.equal(await s.load(), null);
    for (let i = 11; i <= 15; i++) await s.save({ weights: { ...cur, prefix: i }, profile: null });
    assert.deepEqual(await s.load(), { weights: { ...cur, prefix: 15 }, profile: null });
    assert.deepEqual(readdirSync(dir), ['w.json']);
    writeFileSync(file, 'not json');
    await assert.rejects(s.load(), (e: Error) => e.message.includes(file) && /not JSON/.test(e.message));
    writeFileSync(file, '{"weights": {"prefix": 1}}');
    await assert.rejects(s.load(), /weights\.queue must be a finite number/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
