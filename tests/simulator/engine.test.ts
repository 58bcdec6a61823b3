import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicaEngine, type EngineEvent, type EngineRequest } from '../../simulator/engine.js';
import { LatencyModel, T4_QWEN25_3B } from '../../simulator/latency.js';
import { tokenizePrompt } from '../../simulator/tokens.js';

const req = (text: string, outputTokens = 1): EngineRequest => ({ ...tokenizePrompt(text, 16), outputTokens });
const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-6, `${msg ?? ''} expected ${b}, got ${a}`);

/** Runs the engine until idle; returns all events. */
function drain(e: ReplicaEngine): EngineEvent[] {
  const out: EngineEvent[] = [];
  for (let t = e.nextEventTime(); t !== Infinity; t = e.nextEventTime()) out.push(...e.advance(t));
  out.push(...e.advance(e.nowMs));
  return out;
}
const firstTokenAt = (evs: EngineEvent[], id: number) => evs.find((e) => e.kind === 'first_token' && e.id === id)!.atMs;
const finished = (evs: EngineEvent[], id: number) => evs.find((e) => e.kind === 'finished' && e.id === id) as Extract<EngineEvent, { kind: 'finished' }>;

test('TTFT of a lone request follows 38 ms + 0.228 ms per uncached token, and a cached prefix cuts it', () => {
  const e = new ReplicaEngine();
  const prompt = 'x'.repeat(4000); // 1000 tokens, 62 full blocks + 8 tokens
  const a = e.submit(req(prompt), 0);
  let evs = drain(e);
  close(firstTokenAt(evs, a), 38 + 0.228 * 1000, 'uncached TTFT');
  assert.equal(finished(evs, a).cachedTokens, 0);
  const t0 = e.nowMs;
  const b = e.submit(req(prompt), t0);
  evs = drain(e);
  assert.equal(finished(evs, b).cachedTokens, 992); // 62 full blocks; the partial tail is recomputed
  close(firstTokenAt(evs, b) - t0, 38 + 0.228 * 8, 'cached TTFT');
});

test('decode costs 27 ms per token single stream and 32 ms per token at 16 concurrent', () => {
  const single = new ReplicaEngine({ tokenEvents: true });
  const id = single.submit(req('a'.repeat(256), 11), 0);
  const evs = drain(single);
  const ttft = firstTokenAt(evs, id);
  close(finished(evs, id).e2eMs, ttft + 10 * 27, 'single stream e2e');

  const batch = new ReplicaEngine({ tokenEvents: true });
  const ids = Array.from({ length: 16 }, (_, i) => batch.submit(req(String(i).padEnd(256, '.'), 5), 0));
  const bevs = drain(batch);
  const first = firstTokenAt(bevs, ids[0]!);
  for (const i of ids) close(firstTokenAt(bevs, i), first, 'all prefilled in one step');
  const tokenTimes = bevs.filter((ev) => ev.kind === 'token' && ev.id === ids[3]).map((ev) => ev.atMs);
  assert.equal(tokenTimes.length, 4);
  for (let k = 0; k < 4; k++) close(tokenTimes[k]!, first + 32 * (k + 1), `token ${k + 1}`);
});

test('step time grows with the batch and throughput stops growing past saturation', () => {
  const m = new LatencyModel(T4_QWEN25_3B);
  assert.ok(m.decodeStepMs(2) > m.decodeStepMs(1));
  close(m.decodeStepMs(16), 32);
  const tput = (n: number) => n / m.decodeStepMs(n);
  assert.ok(tput(50) > tput(16));
  close(tput(100), tput(50), 'plateau');
  close(tput(200), tput(50), 'plateau');
  close(m.stepMs(1, 100), 38 + 22.8);
});

test('requests queue when max_num_seqs is reached and run when a slot frees', () => {
  const e = new ReplicaEngine({ maxNumSeqs: 2, tokenEvents: false });
  const ids = [0, 1, 2].map((i) => e.submit(req(`request ${i} `.repeat(10), 3), 0));
  e.advance(e.nextEventTime()); // first step: one request, the others arrived while it ran
  e.advance(e.nextEventTime());
  const s = e.metricsSnapshot();
  assert.equal(s.numRequestsRunning, 2);
  assert.equal(s.numRequestsWaiting, 1);
  const evs = drain(e);
  const done0 = Math.min(finished(evs, ids[0]!).atMs, finished(evs, ids[1]!).atMs);
  assert.ok(firstTokenAt(evs, ids[2]!) > done0, 'third request starts after a running one finished');
  assert.ok(finished(evs, ids[2]!).queueMs > 0);
  assert.equal(e.metricsSnapshot().requestSuccess, 3);
});

test('shared prefixes hit the cache block by block; a different prefix does not', () => {
  const e = new ReplicaEngine();
  const system = 'S'.repeat(64 * 10); // exactly 10 blocks
  const a = e.submit(req(system + 'question one?'), 0);
  drain(e);
  const b = e.submit(req(system + 'another question entirely'), e.nowMs);
  const c = e.submit(req('T' + system.slice(1) + 'question one?'), e.nowMs);
  const evs = drain(e);
  assert.equal(finished(evs, b).cachedTokens, 160);
  assert.equal(finished(evs, c).cachedTokens, 0);
  const s = e.metricsSnapshot();
  assert.equal(s.prefixCacheHits, 160);
  assert.equal(s.prefixCacheQueries, [a, b, c].length && tokenizePrompt(system + 'question one?', 16).promptTokens * 2 + tokenizePrompt(system + 'another question entirely', 16).promptTokens);
});

test('only full blocks are cached, and the last prompt token is always computed', () => {
  const cachedOnRepeat = (chars: number) => {
    const e = new ReplicaEngine();
    const text = 'p'.repeat(chars);
    e.submit(req(text), 0);
    drain(e);
    const id = e.submit(req(text), e.nowMs);
    return finished(drain(e), id).cachedTokens;
  };
  assert.equal(cachedOnRepeat(60), 0); // 15 tokens: no full block
  assert.equal(cachedOnRepeat(64), 0); // 16 tokens: one block, but the last token must be recomputed
  assert.equal(cachedOnRepeat(68), 16); // 17 tokens
  assert.equal(cachedOnRepeat(128), 16); // 32 tokens: the second block holds the last token
  assert.equal(cachedOnRepeat(132), 32);
  assert.deepEqual(tokenizePrompt('q'.repeat(65), 16).blockHashes.length, 1);
  assert.notEqual(tokenizePrompt('a'.repeat(64) + 'b'.repeat(64), 16).blockHashes[1], tokenizePrompt('c'.repeat(64) + 'b'.repeat(64), 16).blockHashes[1], 'hashes chain the parent');
});

test('free blocks are evicted least recently freed first, a request tail before its head', () => {
  const e = new ReplicaEngine({ numGpuBlocks: 8, maxNumBatchedTokens: 256 });
  const A = 'A'.repeat(64 * 4 + 4); // 65 tokens: 4 full blocks + 1 partial -> 5 blocks
  const B = 'B'.repeat(64 * 3 - 4); // 47 tokens: 2 full blocks + 1 partial -> 3 blocks
  e.submit(req(A), 0); drain(e);
  e.submit(req(B), e.nowMs); drain(e);
  assert.equal(e.cachedPrefixBlocks(tokenizePrompt(A, 16).blockHashes), 4);
  assert.equal(e.cachedPrefixBlocks(tokenizePrompt(B, 16).blockHashes), 2);
  // 8 blocks, all free; LRU order: unused block(s), then A's blocks tail first, then B's tail first.
  const C = 'C'.repeat(64 * 2 + 4); // 33 tokens -> 3 blocks: takes the spare one and A's two last
  e.submit(req(C), e.nowMs); drain(e);
  assert.equal(e.cachedPrefixBlocks(tokenizePrompt(A, 16).blockHashes), 2, 'A keeps its head');
  assert.equal(e.cachedPrefixBlocks(tokenizePrompt(B, 16).blockHashes), 2, 'B untouched');
  const id = e.submit(req(A), e.nowMs);
  assert.equal(finished(drain(e), id).cachedTokens, 32);
  assert.ok(e.metricsSnapshot().evictions > 0);
});

test('blocks of running requests are pinned: a request that does not fit waits instead of evicting them', () => {
  const e = new ReplicaEngine({ numGpuBlocks: 8, maxNumBatchedTokens: 256 });
  const A = 'A'.repeat(64 * 4); // 64 tokens = 4 blocks, then decodes into a 5th
  const aHashes = tokenizePrompt(A, 16).blockHashes;
  const a = e.submit(req(A, 20), 0);
  e.advance(e.nextEventTime()); // A prefilled
  e.advance(e.nextEventTime()); // A's first decode step takes a 5th block
  const b = e.submit(req('B'.repeat(64 * 6 - 8), 1), e.nowMs); // 94 tokens -> 6 blocks > 3 free
  for (let i = 0; i < 5; i++) e.advance(e.nextEventTime());
  let s = e.metricsSnapshot();
  assert.equal(s.numRequestsRunning, 1);
  assert.equal(s.numRequestsWaiting, 1);
  assert.equal(e.cachedPrefixBlocks(aHashes), 4, 'running request keeps its cached blocks');
  assert.ok(s.kvCacheUsage >= 5 / 8);
  const evs = drain(e);
  assert.ok(firstTokenAt(evs, b) > finished(evs, a).atMs);
  s = e.metricsSnapshot();
  assert.equal(s.kvCacheUsage, 0);
  assert.equal(s.numRequestsRunning + s.numRequestsWaiting, 0);
});

test('a request that runs out of KV preempts the newest one, which recomputes later', () => {
  const e = new ReplicaEngine({ numGpuBlocks: 6, maxNumBatchedTokens: 256 });
  const a = e.submit(req('a'.repeat(64 * 2 - 4), 40), 0);
  const b = e.submit(req('b'.repeat(64 * 2 - 4), 40), 0);
  const evs = drain(e);
  assert.equal(finished(evs, a).outputTokens, 40);
  assert.equal(finished(evs, b).outputTokens, 40);
  assert.ok(e.metricsSnapshot().preemptions > 0);
  assert.equal(e.metricsSnapshot().kvCacheUsage, 0);
});

test('chunked prefill: a prompt over the step budget is spread across steps', () => {
  const e = new ReplicaEngine({ maxNumBatchedTokens: 512 });
  const id = e.submit(req('z'.repeat(4 * 1200)), 0);
  const evs = drain(e);
  close(firstTokenAt(evs, id), 3 * 38 + 0.228 * 1200); // 512 + 512 + 176 tokens
});

test('same inputs give the same events (deterministic), aborts release blocks, bad requests throw', () => {
  const run = () => {
    const e = new ReplicaEngine({ tokenEvents: true, maxNumSeqs: 4 });
    const evs: EngineEvent[] = [];
    for (let i = 0; i < 12; i++) {
      evs.push(...e.advance(i * 7));
      e.submit(req(`shared system prompt ${i % 3} `.repeat(20) + i, 5 + i), i * 7);
    }
    evs.push(...drain(e));
    return evs;
  };
  assert.deepEqual(run(), run());
  const e = new ReplicaEngine();
  const id = e.submit(req('x'.repeat(400), 50), 0);
  e.advance(e.nextEventTime());
  assert.ok(e.metricsSnapshot().kvCacheUsage > 0);
  assert.equal(e.abort(id, e.nowMs), true);
  assert.equal(e.metricsSnapshot().kvCacheUsage, 0);
  assert.equal(e.abort(id, e.nowMs), false);
  assert.throws(() => e.submit({ promptTokens: 0, blockHashes: [], outputTokens: 1 }, e.nowMs), /at least one token/);
  assert.throws(() => e.submit({ promptTokens: 30000, blockHashes: [], outputTokens: 5000 }, e.nowMs), /maximum context length/);
  assert.throws(() => new ReplicaEngine({ numGpuBlocks: 0 }), /numGpuBlocks/);
});

test('calibration: 8 concurrent requests behind a 1000-token prefix, ~2.1 s TTFT cold vs ~0.13 s cached (REFERENCE §7: 2.2 s -> 0.12 s)', () => {
  const maxTtft = (warm: boolean) => {
    const e = new ReplicaEngine();
    const system = 'S'.repeat(4000);
    if (warm) { e.submit(req(system + 'warm-up question'), 0); drain(e); }
    const t0 = e.nowMs;
    for (let i = 0; i < 8; i++) e.submit(req((warm ? system : String(i) + system) + `question ${i} `.repeat(16), 100), t0);
    return Math.max(...drain(e).flatMap((ev) => (ev.kind === 'finished' ? [ev.ttftMs] : [])));
  };
  const cold = maxTtft(false), cached = maxTtft(true);
  assert.ok(cold > 1800 && cold < 2500, `cold ${cold}`);
  assert.ok(cached > 100 && cached < 160, `cached ${cached}`);
});
