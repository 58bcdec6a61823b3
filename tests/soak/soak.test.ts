// A small soak: distinct prompts through two worker VMs with a small prefix index, so the
// index fills and wraps many times. The module's memory must stop growing within the index
// bound, the host heap must not grow with the request count, and no stream may stay open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SHARED_KEYS, runSoak } from './soak.js';

/** Heap growth over the second half that still counts as noise (V8 keeps some caches). */
const HEAP_NOISE_BYTES = 4 * 1024 * 1024;

test('30k distinct prompts: module memory flat within the index bound, no host heap growth, no stream left open', async () => {
  const r = await runSoak({ requests: 30_000, indexEntries: 4096, inFlight: 64, checkpoints: 6 });
  assert.equal(r.traps, 0);
  assert.equal(r.routed, r.requests);
  assert.ok(r.withinIndexBound, JSON.stringify({ baseline: r.baselineModuleBytes, bound: r.indexBoundBytesPerVm, last: r.checkpoints.at(-1) }));
  assert.deepEqual(r.moduleGrowthSecondHalf, [0, 0], JSON.stringify(r.checkpoints.map((c) => c.moduleBytes)));
  // The shared checkpoint index adds bounded buckets as distinct prompts arrive; nothing else may grow.
  assert.ok(r.sharedKeys <= MAX_SHARED_KEYS, `${r.sharedKeys} shared-data keys`);
  assert.ok(r.hostHeapGrowthSecondHalfBytes < HEAP_NOISE_BYTES + r.sharedKeyAllowanceSecondHalfBytes,
    `host heap grew ${r.hostHeapGrowthSecondHalfBytes} bytes over the second half (${r.sharedKeyAllowanceSecondHalfBytes} for new shared-data keys)`);
  assert.equal(r.openContexts, 0);
});
