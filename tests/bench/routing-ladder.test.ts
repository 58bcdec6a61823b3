// The load ladder of bench:routing: goodput interpolation, the session
// workloads, the prototype's checkpoint index, the precise bound's view of the
// engines, and a smoke run of the CLI (exit 0, JSON shape).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ReplicaEngine } from '../../simulator/engine.js';
import { goodputOf } from '../../bench/routing/ladder.js';
import { LADDER_POLICIES } from '../../bench/routing/scenarios.js';
import { CONVERSATION, LONG_CONTEXT, sessionTemplate, sessionWorkload } from '../../bench/routing/sessions.js';
import { CheckpointIndex, WorkPolicy, checkpointDepths } from '../../bench/routing/workPolicy.js';
import { makeRequest, textOf } from '../../bench/routing/workloads.js';
import { tokenizePrompt } from '../../simulator/tokens.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('goodput: interpolated on log TTFT between the rungs around the SLO; below and above the ladder', () => {
  const pts = [{ offeredRps: 1, ttftP95Ms: 500 }, { offeredRps: 2, ttftP95Ms: 1000 }, { offeredRps: 3, ttftP95Ms: 4000 }];
  const g = goodputOf(pts, 2000, 2);
  assert.equal(g.how, 'crossed');
  assert.ok(Math.abs(g.rps - 2.5) < 1e-9, `${g.rps}`); // log 2000 is halfway between log 1000 and log 4000
  assert.ok(Math.abs(g.load - 1.25) < 1e-9);
  assert.deepEqual(goodputOf([{ offeredRps: 1, ttftP95Ms: 2500 }], 2000, 2), { rps: 0, load: 0, how: 'below-ladder' });
  assert.deepEqual(goodputOf(pts, 5000, 2), { rps: 3, load: 1.5, how: 'above-ladder' });
});

test('conversation sessions: each turn is the whole conversation so far, hashes match the simulator, rate moves only arrivals', () => {
  const tpl = sessionTemplate('conv', 'c', CONVERSATION, 60, 3);
  assert.ok(tpl.requestCount >= 60);
  for (const s of tpl.sessions) {
    assert.ok(s.length >= 1 && s.length <= 20);
    for (let k = 1; k < s.length; k++) {
      assert.ok(s[k]!.prompt.startsWith(s[k - 1]!.prompt), 'a turn extends the previous prompt');
      assert.ok(s[k]!.offsetUs > s[k - 1]!.offsetUs);
    }
    for (const r of s) {
      assert.ok(r.promptTokens <= CONVERSATION.maxPromptTokens || r === s[0]);
      assert.deepEqual(r.blockHashes, tokenizePrompt(r.prompt, 16).blockHashes);
    }
  }
  const slow = sessionWorkload(tpl, 1, 40), fast = sessionWorkload(tpl, 4, 40);
  assert.equal(slow.requests.length, fast.requests.length);
  assert.deepEqual([...slow.requests.map((r) => r.prompt)].sort(), [...fast.requests.map((r) => r.prompt)].sort());
  assert.ok(slow.requests.every((r, i) => i === 0 || r.arrivalUs >= slow.requests[i - 1]!.arrivalUs));
  assert.ok(fast.requests[fast.requests.length - 1]!.arrivalUs < slow.requests[slow.requests.length - 1]!.arrivalUs);
});

test('long-context sessions: 20k-60k-token prompts sharing a preamble and a document', () => {
  const tpl = sessionTemplate('lc', 'l', LONG_CONTEXT, 20, 5);
  const all = tpl.sessions.flat();
  assert.ok(all.every((r) => r.promptTokens >= 20_000 && r.promptTokens <= 60_000), `${Math.min(...all.map((r) => r.promptTokens))}..${Math.max(...all.map((r) => r.promptTokens))}`);
  const shared = (a: number[], b: number[]) => { let k = 0; while (k < a.length && a[k] === b[k]) k++; return k; };
  const firsts = tpl.sessions.map((s) => s[0]!.blockHashes);
  assert.ok(firsts.some((h, i) => i > 0 && shared(h, firsts[0]!) >= 4096 / 16), 'some session shares at least the preamble with the first');
});

test('checkpoint index: dense then every 16th block; finds the deepest held checkpoint; evicts chains from the tail', () => {
  assert.deepEqual(checkpointDepths(40), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 32]);
  const hashes = Array.from({ length: 100 }, (_, i) => 1000 + i);
  const ix = new CheckpointIndex(2, 64);
  ix.insert(0, hashes, 50); // checkpoints up to 48
  assert.equal(ix.matchBlocks(0, hashes, 100), 48);
  assert.equal(ix.matchBlocks(1, hashes, 100), 0);
  const other = [1000, 1001, ...Array.from({ length: 98 }, (_, i) => 5000 + i)];
  assert.equal(ix.matchBlocks(0, other, 100), 2);
  // 48 blocks held; inserting 32 more of another chain passes 64: the first chain loses its deepest entries first.
  ix.insert(0, Array.from({ length: 40 }, (_, i) => 9000 + i), 32);
  const left = ix.matchBlocks(0, hashes, 100);
  assert.ok(left > 0 && left < 48, `${left}`);
});

test('precise routes a prompt to the replica whose engine holds its prefix', () => {
  const engines = [0, 1, 2].map(() => new ReplicaEngine({ numGpuBlocks: 2000, blockSize: 16 }, 0));
  const prompt = textOf(11, 3000);
  const warm = makeRequest(0, 0, prompt + textOf(12, 50), 1, 'g');
  engines[2]!.submit({ promptTokens: warm.promptTokens, blockHashes: warm.blockHashes, outputTokens: 1 }, 0);
  engines[2]!.advance(60_000);
  const p = WorkPolicy.precise({ name: 'precise', replicas: 3, gateways: 1, epsilon: 0.5 });
  p.bindEngines(engines);
  const d = p.route(makeRequest(1, 0, prompt + textOf(13, 50), 10, 'g'), { gateway: 0, worker: 0 });
  assert.equal(d.replica, 2);
  assert.ok(d.matched! >= 180, `${d.matched}`);
});

/** `bench/routing.ts --quick --json` with `args`: its JSON document (the run must exit 0). */
function quickLadder(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/routing.ts', '--quick', '--json', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('bench:routing smoke: the tight-KV shape runs on engines sized so its shared prefixes fill 75% of the cache', () => {
  const w = quickLadder(['--only', 'sp-32x32-tight-kv', '--replicas', '2', '--requests-scale', '0.1', '--loads', '0.7', '--extra-loads', 'none', '--policies', 'round-robin,sglang,prefix-router']).workloads[0];
  assert.equal(w.name, 'sp-32x32-tight-kv');
  assert.equal(w.replicas, 2);
  assert.equal(w.kvBlocks, Math.ceil((32 * 128) / 0.75 / 2)); // 32 prefixes of 2048 tokens, 16-token blocks
  assert.deepEqual(w.rungs[0].policies.map((p: { name: string }) => p.name), ['round-robin', 'sglang-style', 'prefix-router']);
  for (const p of w.rungs[0].policies) assert.equal(p.completed, w.rungs[0].requests, p.name);
});

test('bench:routing smoke: the new system prompt is measured after a warm-up of 400 requests that no figure counts', () => {
  const w = quickLadder(['--only', 'new-system-prompt', '--replicas', '3', '--requests-scale', '0.2', '--loads', '0.7', '--extra-loads', 'none', '--policies', 'round-robin,prefix-router']).workloads[0];
  assert.equal(w.name, 'new-system-prompt');
  assert.equal(w.kind, 'hot-spot');
  assert.match(w.description, /400 warm-up requests not measured/);
  const rung = w.rungs[0];
  assert.ok(rung.requests >= 20 && rung.requests < 400, `${rung.requests} measured`);
  for (const p of rung.policies) {
    assert.equal(p.completed, rung.requests, p.name);
    assert.ok(p.maxOverMeanLoad >= 1 && p.maxOverMeanLoad < 1.5, `${p.name} ${p.maxOverMeanLoad}`);
  }
  // Round robin sends every replica the new prompt at once: nearly all its measured tokens hit after each replica's first.
  assert.ok(rung.oracleHitRate > 0.8, `${rung.oracleHitRate}`);
});

test('bench:routing smoke: a tiny ladder exits 0 and prints the JSON document', () => {
  const doc = quickLadder(['--only', 'one-system-prompt', '--replicas', '2', '--requests-scale', '0.3', '--loads', '0.5,0.9', '--extra-loads', 'none', '--policies', 'round-robin,sglang,precise,prefix-router,proto-work']);
  assert.equal(doc.workloads.length, 1);
  const w = doc.workloads[0];
  assert.equal(w.name, 'one-system-prompt');
  assert.equal(w.capacity.method, 'saturation');
  assert.ok(w.capacity.rps > 0);
  assert.deepEqual(w.rungs.map((x: { load: number }) => x.load), [0.5, 0.9]);
  for (const rung of w.rungs) {
    // --policies matches names by substring: proto-work brings its variants.
    assert.deepEqual(rung.policies.map((p: { name: string }) => p.name), LADDER_POLICIES.map((p) => p.name).filter((n) => n !== 'least-load' && n !== 'gie-style'));
    for (const p of rung.policies) assert.equal(p.completed, rung.requests, p.name);
  }
  for (const name of ['round-robin', 'precise', 'prefix-router', 'proto-work']) assert.ok(['crossed', 'below-ladder', 'above-ladder'].includes(w.goodput[name].how));
  assert.ok(doc.targets.some((t: { router: string }) => t.router === 'prefix-router'));
  assert.deepEqual(w.filterWarnings, []);
});

test('bench:routing smoke: a production trace on the ladder, at fractions of round robin\'s measured capacity on it', () => {
  const doc = quickLadder(['--only', 'trace', '--trace', 'data/traces/mooncake-conversation-head-1986.jsonl', '--trace-limit', '40', '--replicas', '2', '--loads', '0.5,0.9', '--extra-loads', 'none', '--policies', 'round-robin,prefix-router']);
  const w = doc.workloads[0];
  assert.equal(w.name, 'trace');
  assert.equal(w.capacity.method, 'saturation');
  assert.equal(w.sloMs, 10000);
  assert.deepEqual(w.rungs.map((x: { load: number }) => x.load), [0.5, 0.9]);
  // Every rung replays the whole (limited) trace; only its timestamps scale with the rate.
  for (const rung of w.rungs) {
    assert.equal(rung.requests, 40);
    // One of the 40 asks 87,169 tokens, past the engines' max_model_len: refused by the engine, as vLLM does.
    for (const p of rung.policies) assert.equal(p.completed + p.rejected, 40, p.name);
  }
  const [low, high] = w.rungs.map((x: { nominalRps: number }) => x.nominalRps);
  assert.ok(Math.abs(high / low - 0.9 / 0.5) < 2e-3, `${low} ${high}`); // the JSON rounds rates to 4 decimals
  assert.deepEqual(w.filterWarnings, []);
});

test('bench:routing --trace-rate: the trace at multiples of its own rate instead of the ladder\'s rungs; an empty list is refused', () => {
  // --quick replays the first half of a trace; --requests-scale 2 makes that all of it.
  const w = quickLadder(['--only', 'trace', '--trace', 'bench/routing/fixtures/mooncake-sample.jsonl', '--trace-replicas', '2', '--trace-rate', '2,0.5', '--requests-scale', '2', '--policies', 'round-robin', '--no-variants']).workloads[0];
  assert.equal(w.capacity.method, 'trace');
  assert.ok(Math.abs(w.capacity.rps - 6 / 1.7) < 1e-3, `the trace's own rate: ${w.capacity.rps}`);
  assert.deepEqual(w.rungs.map((x: { load: number }) => x.load), [0.5, 2]);
  assert.match(w.description, /6 requests over 1\.7 s, 512 tokens per hash id$/);
  const half = quickLadder(['--only', 'trace', '--trace', 'bench/routing/fixtures/mooncake-sample.jsonl', '--trace-replicas', '2', '--trace-rate', '1', '--policies', 'round-robin', '--no-variants']).workloads[0];
  assert.equal(half.rungs[0].requests, 3);
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/routing.ts', '--trace', 'bench/routing/fixtures/mooncake-sample.jsonl', '--trace-rate', 'none'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^--trace-rate: give at least one rate/);
});
