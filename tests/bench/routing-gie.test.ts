// The GIE-style picker re-implementation, on hand-made cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GieIndexer, GieRouter, gieMatchLengths, giePromptHashes, gieScores, loadXxhash, lowerIsBetter, pickMax,
} from '../../bench/routing/gie.js';
import { Rng } from '../../bench/routing/random.js';

test('xxhash64 is the reference one (empty input, seed 0)', async () => {
  const x = await loadXxhash();
  assert.equal(x.h64Raw(new Uint8Array(0), 0n), 0xef46db3751d8e999n);
});

test('prompt hashes: model hash first, one chained hash per full 64-byte block, at most 256 blocks', async () => {
  const x = await loadXxhash();
  assert.deepEqual(giePromptHashes(x, 'm', 'a'.repeat(63)), []); // shorter than one block: no hashes at all
  const a = giePromptHashes(x, 'm', 'a'.repeat(64) + 'b'.repeat(64) + 'tail');
  assert.equal(a.length, 3);
  assert.equal(a[0], x.h64Raw(new TextEncoder().encode('m'), 0n));
  const block = new Uint8Array(72);
  block.set(new TextEncoder().encode('a'.repeat(64)));
  new DataView(block.buffer).setBigUint64(64, a[0]!, true);
  assert.equal(a[1], x.h64Raw(block, 0n)); // xxh64(block || le64(previous))
  const b = giePromptHashes(x, 'm', 'a'.repeat(64) + 'c'.repeat(64));
  assert.equal(b[1], a[1]);
  assert.notEqual(b[2], a[2]);
  assert.notEqual(giePromptHashes(x, 'other', 'a'.repeat(64))[1], a[1]); // seeded with the model
  assert.equal(giePromptHashes(x, 'm', 'z'.repeat(64 * 300)).length, 257);
});

test('indexer: per-server LRU, lookup by hash, eviction removes the server', () => {
  const ix = new GieIndexer(2, 3);
  ix.add([1n, 2n, 3n], 0);
  ix.add([1n, 2n], 1);
  assert.deepEqual([...ix.get(1n)!].sort(), [0, 1]);
  ix.add([4n], 0); // evicts 1n from server 0 (least recent)
  assert.deepEqual([...ix.get(1n)!], [1]);
  assert.equal(ix.size(0), 3);
  // GIE counts, per server, the hashes it holds while walking until a hash NO server holds:
  // server 0 lost hash 1 yet still scores hashes 2 and 3.
  assert.deepEqual(gieMatchLengths(ix, [1n, 2n, 3n], 2), [2, 2]);
  assert.deepEqual(gieMatchLengths(ix, [2n, 3n, 9n, 4n], 2), [2, 1]);
});

test('scores: prefix 3 x matched/total + queue 2 x (max-q)/(max-min) + KV 2 x (1-usage)', () => {
  assert.deepEqual(lowerIsBetter([4, 4, 4]), [1, 1, 1]);
  assert.deepEqual(lowerIsBetter([0, 5, 10]), [1, 0.5, 0]);
  const s = gieScores([4, 0, 2], 4, [{ waiting: 0, kvUsage: 0.5 }, { waiting: 10, kvUsage: 0 }, { waiting: 5, kvUsage: 1.5 }]);
  assert.deepEqual(s, [3 + 2 + 1, 0 + 0 + 2, 1.5 + 1 + 0]);
  assert.deepEqual(gieScores([0, 0], 0, [{ waiting: 1, kvUsage: 0.2 }, { waiting: 1, kvUsage: 0.2 }]), [3.6, 3.6]);
});

test('picker: the max score, exact ties broken at random by the seeded stream', () => {
  assert.equal(pickMax([1, 3, 2], Rng.of(1)), 1);
  const seen = new Set<number>();
  for (let seed = 0; seed < 40; seed++) seen.add(pickMax([2, 1, 2], Rng.of(seed)));
  assert.deepEqual([...seen].sort(), [0, 2]);
  assert.equal(pickMax([2, 1, 2], Rng.of(9)), pickMax([2, 1, 2], Rng.of(9)));
});

test('router: a prompt goes back to where its prefix was sent unless load outweighs the prefix', async () => {
  const x = await loadXxhash();
  const r = new GieRouter(x, 3, Rng.of(2), 'm');
  const sys = 's'.repeat(64 * 20);
  const idle = [{ waiting: 0, kvUsage: 0 }, { waiting: 0, kvUsage: 0 }, { waiting: 0, kvUsage: 0 }];
  const first = r.route(sys + 'q1', idle);
  assert.equal(first.matched, 0);
  assert.equal(first.total, 21);
  // a longer queue on the holder: 3 x 1 + 2 x 0 + 2 x 0.5 = 4 beats 0 + 2 x 1 + 2 x 0.5 = 3
  const queued = idle.map((m, i) => (i === first.server ? { waiting: 10, kvUsage: 0.5 } : { waiting: 5, kvUsage: 0.5 }));
  const again = r.route(sys + 'q2', queued);
  assert.equal(again.server, first.server);
  assert.equal(again.matched, 21);
  // longest queue and a full cache: 3 + 0 + 0.1 < 0 + 2 + 2, the request moves away
  const full = idle.map((m, i) => (i === first.server ? { waiting: 50, kvUsage: 0.95 } : m));
  assert.notEqual(r.route(sys + 'q3', full).server, first.server);
});
