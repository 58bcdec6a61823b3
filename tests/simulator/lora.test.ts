// The simulator's LoRA adapters: at most max_loras adapters run in a step (a
// request of another adapter waits, the next one runs), adapters load on
// demand into slots, and no two adapters share KV blocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineRequestError, ReplicaEngine, type EngineEvent } from '../../simulator/engine.js';
import { tokenizePrompt } from '../../simulator/tokens.js';

const req = (prompt: string, lora?: string, outputTokens = 20) => ({ ...tokenizePrompt(prompt, 16), outputTokens, ...(lora ? { lora } : {}) });

function runAll(e: ReplicaEngine): EngineEvent[] {
  const out: EngineEvent[] = [];
  for (let t = e.nextEventTime(); t !== Infinity; t = e.nextEventTime()) out.push(...e.advance(t));
  return out;
}

test('a step runs at most max_loras adapters; a request of another adapter waits while the next one runs', () => {
  const e = new ReplicaEngine({ maxLoras: 1 });
  const a = e.submit(req('a '.repeat(100), 'sql'), 0);
  const b = e.submit(req('b '.repeat(100), 'chat'), 0);
  const c = e.submit(req('c '.repeat(100)), 0);
  e.advance(e.nextEventTime());
  const s = e.metricsSnapshot();
  assert.deepEqual([s.numRequestsRunning, s.numRequestsWaiting], [2, 1], 'the base-model request passed the blocked one');
  assert.deepEqual(s.runningLoraAdapters, ['sql']);
  assert.deepEqual(s.waitingLoraAdapters, ['chat']);
  const done = runAll(e).filter((x) => x.kind === 'finished').map((x) => x.id);
  assert.deepEqual(done.sort(), [a, b, c].sort());
  assert.equal(e.metricsSnapshot().loraLoads, 2);
});

test('a loaded adapter is not loaded again; loads cost step time', () => {
  const e = new ReplicaEngine({ maxLoras: 2, loraLoadMs: 50 });
  e.submit(req('x '.repeat(50), 'sql', 1), 0);
  const first = runAll(e).find((x) => x.kind === 'finished')!;
  e.submit(req('y '.repeat(50), 'sql', 1), 1000);
  const second = runAll(e).find((x) => x.kind === 'finished')!;
  assert.equal(e.metricsSnapshot().loraLoads, 1);
  assert.ok(first.kind === 'finished' && second.kind === 'finished' && first.ttftMs - second.ttftMs >= 49, `${first.ttftMs} vs ${second.ttftMs}`);
});

test('adapters never share KV blocks with each other or the base model; LoRA off refuses adapters', () => {
  const e = new ReplicaEngine({ maxLoras: 2 });
  const prompt = 'shared system prompt '.repeat(40);
  e.submit(req(prompt, 'sql', 1), 0);
  runAll(e);
  const blocks = tokenizePrompt(prompt, 16).blockHashes;
  assert.ok(e.cachedPrefixBlocks(blocks, 'sql') > 0);
  assert.equal(e.cachedPrefixBlocks(blocks, 'chat'), 0);
  assert.equal(e.cachedPrefixBlocks(blocks), 0);
  assert.throws(() => new ReplicaEngine().submit(req(prompt, 'sql'), 0), EngineRequestError);
});
