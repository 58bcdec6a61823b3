// The LoRA adapters the control plane scrapes (vllm:lora_requests_info) and
// carries to the filter in state section 16.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseLoraInfo } from '../../control-plane/loraMetrics.js';
import { decodeLoraSection, encodeLoraSection, LORA_MAX_PER_REPLICA, LORA_SECTION_TAG } from '../../control-plane/loraSection.js';
import { StateStore } from '../../control-plane/stateStore.js';
import { decodeState } from '../../control-plane/stateWire.js';
import { renderMetrics } from '../../simulator/metrics.js';
import { ReplicaEngine } from '../../simulator/engine.js';
import { tokenizePrompt } from '../../simulator/tokens.js';

test('reads the newest lora_requests_info series per engine, engines added up', () => {
  const text = [
    '# HELP vllm:lora_requests_info Running stats on lora requests.',
    '# TYPE vllm:lora_requests_info gauge',
    'vllm:lora_requests_info{engine="0",max_lora="4",model_name="base",running_lora_adapters="old",waiting_lora_adapters=""} 1.70e+09',
    'vllm:lora_requests_info{engine="0",max_lora="4",model_name="base",running_lora_adapters="sql,chat",waiting_lora_adapters="math"} 1.71e+09',
    'vllm:lora_requests_info{engine="1",max_lora="4",model_name="base",running_lora_adapters="chat",waiting_lora_adapters=""} 1.705e+09',
    'vllm:num_requests_running{engine="0",model_name="base"} 3.0',
  ].join('\n');
  assert.deepEqual(parseLoraInfo(text), { maxLora: 8, running: ['sql', 'chat'], waiting: ['math'], baseModel: 'base' });
  assert.equal(parseLoraInfo('vllm:num_requests_running 1\n'), null);
  // The real sample (vLLM without LoRA): no slots, nothing running.
  const real = readFileSync(new URL('../../data/metrics/vllm-aibrix-docs-partial.txt', import.meta.url), 'utf8');
  assert.deepEqual(parseLoraInfo(real), { maxLora: 0, running: [], waiting: [] });
});

test('section 16 round-trips, leaves out no-LoRA fleets and bounds what it carries', () => {
  assert.equal(encodeLoraSection([null, { maxLora: 0, running: [], waiting: [] }]), null, 'no slots anywhere: no section (state format 1)');
  const replicas = [{ maxLora: 2, running: ['a', 'b'], waiting: ['c'], baseModel: 'base' }, null, { maxLora: 1, running: ['c'], waiting: [] }];
  const sec = encodeLoraSection(replicas)!;
  assert.equal(sec.tag, LORA_SECTION_TAG);
  const back = decodeLoraSection(sec.bytes, 3);
  assert.deepEqual(back.baseModels, ['base']);
  assert.deepEqual(back.replicas, [{ maxLora: 2, running: ['a', 'b'], waiting: ['c'] }, null, { maxLora: 1, running: ['c'], waiting: [] }]);
  assert.throws(() => decodeLoraSection(sec.bytes, 2), /replica count/);
  for (let i = 0; i < sec.bytes.length; i++) {
    const bad = sec.bytes.slice(0, i);
    assert.throws(() => decodeLoraSection(bad, 3), /LoRA section/, `cut at ${i}`);
  }
  const many = Array.from({ length: 400 }, (_, i) => `adapter-${i}`);
  const big = decodeLoraSection(encodeLoraSection([{ maxLora: 8, running: many, waiting: ['x'.repeat(300)] }])!.bytes, 1);
  assert.equal(big.replicas[0]!.running.length, LORA_MAX_PER_REPLICA);
  assert.deepEqual(big.replicas[0]!.waiting, [], 'a name longer than 255 bytes is left out');
});

test('section 16 names are compared as bytes and must be well-formed UTF-8, as the filter reads them', () => {
  const bom = encodeLoraSection([{ maxLora: 2, running: ['\ufeffsql', 'sql'], waiting: [] }])!;
  assert.deepEqual(decodeLoraSection(bom.bytes, 1).replicas, [{ maxLora: 2, running: ['\ufeffsql', 'sql'], waiting: [] }]);
  const bad = Uint8Array.from(encodeLoraSection([{ maxLora: 1, running: ['sql'], waiting: [] }])!.bytes);
  bad[6] = 0xff; // the 'q' of the first adapter name
  assert.throws(() => decodeLoraSection(bad, 1), /LoRA section \(16\): a name is not UTF-8/);
});

test('the store publishes section 16 from scrapes, and a new version when only adapters change', () => {
  const store = new StateStore({ prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, { stalenessMs: 2000, hitRateWindowMs: 10000 });
  store.setMembers([{ address: '10.0.0.1:8000', ready: true }, { address: '10.0.0.2:8000', ready: true }]);
  const m = { running: 1, waiting: 0, kvUsage: 0.1 };
  store.recordSuccess('10.0.0.1:8000', m, { maxLora: 2, running: ['sql'], waiting: [] });
  store.recordSuccess('10.0.0.2:8000', m, null);
  store.publish();
  const s1 = decodeState(store.bytes);
  assert.equal(s1.sections?.length, 1);
  assert.deepEqual(decodeLoraSection(s1.sections![0]!.bytes, 2).replicas, [{ maxLora: 2, running: ['sql'], waiting: [] }, null]);
  const v1 = store.version;
  store.recordSuccess('10.0.0.1:8000', m, { maxLora: 2, running: ['sql', 'chat'], waiting: [] });
  assert.equal(store.publish(), true);
  assert.ok(store.version > v1);
  store.recordSuccess('10.0.0.1:8000', m, { maxLora: 2, running: ['sql', 'chat'], waiting: [] });
  assert.equal(store.publish(), false, 'unchanged adapters: no new version');
});

test('the simulator reports its adapters as vLLM does, and the control plane reads them back', () => {
  const e = new ReplicaEngine({ maxLoras: 1, numGpuBlocks: 2000 });
  const req = (lora: string, seed: number) => ({ ...tokenizePrompt(`prompt ${seed} `.repeat(30), 16), outputTokens: 50, lora });
  e.submit(req('sql', 1), 0);
  e.submit(req('chat', 2), 0);
  e.advance(e.nextEventTime());
  const snap = e.metricsSnapshot();
  const info = parseLoraInfo(renderMetrics(snap, { modelName: 'base', gpuMemoryUtilization: 0.75 }));
  assert.deepEqual(info, { maxLora: 1, running: ['sql'], waiting: ['chat'], baseModel: 'base' });
});

test('end to end: the control plane scrapes a simulated replica running an adapter and serves section 16 and /v1/replicas', async () => {
  const { startReplicas } = await import('../../simulator/server.js');
  const { startControlPlane } = await import('../../control-plane/server.js');
  const { memoryLogger } = await import('../../control-plane/log.js');
  const { getState, waitFor } = await import('./support.js');
  const sim = await startReplicas({ replicas: 1, basePort: 0, timeScale: 1, loraModules: ['sql'], maxLoras: 2 });
  const address = sim.replicas[0]!.url.replace('http://', '');
  const cp = await startControlPlane({ replicas: [address], scrapeIntervalMs: 20, scrapeTimeoutMs: 500, stalenessMs: 60_000, logger: memoryLogger() });
  try {
    // A slow request keeps the adapter running while the control plane scrapes.
    const pending = fetch(`${sim.replicas[0]!.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sql', prompt: 'hello', max_tokens: 40 }) });
    const state = await waitFor('section 16 with the running adapter', async () => {
      const s = (await getState(cp.url)).state;
      const sec = s?.sections?.find((x) => x.tag === LORA_SECTION_TAG);
      return sec && decodeLoraSection(sec.bytes, s!.replicas.length).replicas[0]?.running.includes('sql') ? s : null;
    }, 10_000);
    assert.equal(state.replicas[0]!.address, address);
    const replicas = await (await fetch(`${cp.url}/v1/replicas`)).json() as { replicas: Array<{ lora: unknown }> };
    assert.equal((replicas.replicas[0]!.lora as { maxLora: number }).maxLora, 2);
    await (await pending).text();
  } finally {
    await cp.close();
    await sim.close();
  }
});
