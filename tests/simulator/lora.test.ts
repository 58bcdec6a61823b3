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

test('over HTTP: an adapter named in --lora-modules is a model, in /v1/models and lora_requests_info; an unknown one is 404', async () => {
  const { startReplicas } = await import('../../simulator/server.js');
  const { parseSimulatorArgs } = await import('../../simulator/config.js');
  const parsed = parseSimulatorArgs(['--lora-modules', 'sql=/adapters/sql', '--lora-modules', 'chat', '--max-loras', '2']);
  assert.ok(parsed !== 'help');
  assert.deepEqual(parsed.loraModules, ['sql', 'chat']);
  const sim = await startReplicas({ replicas: 1, basePort: 0, timeScale: 200, loraModules: ['sql'], maxLoras: 2 });
  try {
    const url = sim.replicas[0]!.url;
    const models = await (await fetch(`${url}/v1/models`)).json() as { data: Array<{ id: string; parent: string | null }> };
    assert.deepEqual(models.data.map((m) => m.id), ['Qwen/Qwen2.5-3B-Instruct', 'sql']);
    const post = (model: string) => fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, prompt: 'hello there', max_tokens: 3 }) });
    assert.equal((await post('sql')).status, 200);
    assert.equal((await post('nope')).status, 404);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /vllm:lora_requests_info\{[^}]*max_lora="2"/);
  } finally {
    await sim.close();
  }
});
