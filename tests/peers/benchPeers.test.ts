// bench:peers: its pure parts, and a smoke run of seconds on simulated replicas through round robin,
// prefix-router and whichever peers npm run peers:install put in .peers/ (a peer that is not
// installed is skipped with a line saying why). No network: everything listens on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goodputRows, pointWorkload, runPeersBench, runPlan, FULL_RUN, type RunResult } from '../../bench/peers/main.js';
import { startReplicaSet } from '../../bench/peers/point.js';
import { ENGINE_MAX_MODEL_LEN } from '../../bench/routing/simulation.js';
import { peerShapes, shapeSloMs, ttftSloMs, SESSION_REFERENCE_RPS, SMOKE_SESSION_SHAPE, SMOKE_SHAPE, TRACE_REFERENCE_RPS } from '../../bench/peers/shapes.js';
import { MOONCAKE_CONVERSATION_TRACE } from '../../bench/routing/mooncake.js';
import { buildLadderShapes } from '../../bench/routing/scenarios.js';
import { measureCapacity } from '../../bench/routing/ladder.js';
import { BLOCK_TOKENS, DEFAULT_WORKLOAD_DIR, MODEL, sharedPrefixTokens, type SimRequest } from '../../bench/routing/workloads.js';
import { runLoad } from '../../bench/peers/loadgen.js';
import { parseCounters, diffCounters, servedShape } from '../../bench/peers/replicaCounters.js';
import { azureTrace } from '../../bench/peers/inferencePerf.js';
import { cpuSeconds } from '../../bench/peers/processes.js';
import { REPO, ROUTERS, routerNamed } from '../../bench/peers/routers.js';
import { renderTable } from '../../bench/peers/report.js';
import { cacheLeft, cacheLeftLine, classify, main as requestsReportMain, pointReport } from '../../bench/peers/requestsReport.js';
import { runScript } from '../tools/npmScript.js';

test('replica counters are summed over engines and label sets, and differenced; the served shape is per request', () => {
  const text = [
    '# TYPE vllm:prefix_cache_queries_total counter',
    'vllm:prefix_cache_queries_total{engine="0",model_name="m"} 100.0',
    'vllm:prefix_cache_queries_total{engine="1",model_name="m"} 50.0',
    'vllm:prefix_cache_hits_total{engine="0",model_name="m"} 30.0',
    'vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 2.0',
    'vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 3.0',
    'vllm:prefix_cache_queries_total_created{engine="0"} 1.7e9',
    'vllm:prompt_tokens_total{engine="0",model_name="m"} 1000.0',
    'vllm:generation_tokens_total{engine="0",model_name="m"} 250.0',
    'vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 4.0',
    'vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 8.0',
    'vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 4.0',
    'vllm:num_preemptions_total{engine="0",model_name="m"} 7.0',
  ].join('\n');
  const c = parseCounters(text);
  assert.deepEqual(c, { prefixQueries: 150, prefixHits: 30, requests: 5, promptTokens: 1000, generationTokens: 250, e2eSeconds: 8, e2eCount: 4, preemptions: 7 });
  const before = { prefixQueries: 50, prefixHits: 10, requests: 1, promptTokens: 200, generationTokens: 50, e2eSeconds: 2, e2eCount: 1, preemptions: 2 };
  const delta = diffCounters([c], [before]);
  assert.deepEqual(delta, [{ prefixQueries: 100, prefixHits: 20, requests: 4, promptTokens: 800, generationTokens: 200, e2eSeconds: 6, e2eCount: 3, preemptions: 5 }]);
  assert.deepEqual(servedShape(delta), { promptTokensPerRequest: 200, outputTokensPerRequest: 50, e2eMeanMs: 2000 });
  assert.ok(Number.isNaN(servedShape([before].map((b) => ({ ...b, requests: 0, e2eCount: 0 }))).e2eMeanMs), 'nothing served: no numbers');
});

test('the arrival trace inference-perf replays: Azure format, the same times relative to the first', () => {
  const text = azureTrace([{ arrivalUs: 250_000.7, outputTokens: 8 }, { arrivalUs: 1_500_000, outputTokens: 8 }, { arrivalUs: 61_000_001, outputTokens: 9 }], 220);
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], 'TIMESTAMP,ContextTokens,GeneratedTokens');
  assert.deepEqual(lines.slice(1), ['2026-01-01 00:00:00.250000,220,8', '2026-01-01 00:00:01.500000,220,8', '2026-01-01 00:01:01.000001,220,9']);
});

test('the TTFT SLO is 3x a lone uncached request of the shape, at least 300 ms', () => {
  assert.equal(ttftSloMs(2304), 1700);
  assert.equal(ttftSloMs(10), 300);
});

test("a run's plan: its arrivals, and at least each point's lone request decoding and start-up, and each router's probe per replica count on top", () => {
  const one = runPlan({ shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1], durationS: 1.5, probeRequests: 3, probeWarmup: 57 }, ['r']);
  assert.equal(one.arrivalsS, 30 / 8, 'at 8 req/s a point holds its least 30 requests');
  const loneS = (38 + 0.228 * 220 + 27 * 7) / 1000; // the simulator's T4 model: first token, then 7 more
  // its own start-up, the warm-up (57 requests down each path, 285 a second), the lead-in through the router and to each replica, then the pairs
  const probeS = 1.1 + (2 * 57) / 285 + (3 * (1 + 2) + 2 * 3) * 0.048;
  assert.ok(Math.abs(one.leastS - one.arrivalsS - loneS - 1.1 - probeS) < 1e-9, `${one.leastS}`);
  const defaultWarmup = runPlan({ shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1], durationS: 1.5, probeRequests: 3 }, ['r']);
  assert.ok(Math.abs(defaultWarmup.leastS - one.leastS - (2 * (3000 - 57)) / 285) < 1e-9, 'the default warm-up is 3000 requests down each path');
  const idle = runPlan({ shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1], durationS: 1.5, probeRequests: 3, probeWarmup: 57, idleCpuS: 4 }, ['r']);
  assert.ok(Math.abs(idle.leastS - one.leastS - (2 + 4)) < 1e-9, 'the idle CPU measure: 2 s of quiet, then the seconds asked for');
  const probeOnly = runPlan({ shapes: [SMOKE_SHAPE, { ...SMOKE_SHAPE, name: 'other' }], replicaCounts: [2], loads: [1], durationS: 1.5, probeRequests: 3, probeWarmup: 57, probeOnly: true }, ['r']);
  assert.equal(probeOnly.arrivalsS, 0);
  assert.ok(Math.abs(probeOnly.leastS - probeS) < 1e-9, 'the probe alone, once for both shapes');
  const ladder = runPlan({ shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1, 2], durationS: 10, probeRequests: 0 }, ['a', 'b', 'c']);
  assert.equal(ladder.arrivalsS, 3 * (80 / 8 + 160 / 16));
  assert.ok(Math.abs(ladder.leastS - ladder.arrivalsS - 3 * 2 * (loneS + 1.1)) < 1e-9, 'no probe, one start-up and drain a point');
  const other = { ...SMOKE_SHAPE, name: 'other' };
  const plan = (probeRequests: number, routerShapes?: Record<string, string[]>) =>
    runPlan({ shapes: [SMOKE_SHAPE, other], replicaCounts: [2], loads: [1], durationS: 1.5, probeRequests, probeWarmup: 57, routerShapes }, ['a', 'b']);
  const both = plan(0);
  const restricted = plan(0, { b: ['other'] });
  assert.ok(Math.abs(restricted.arrivalsS - (3 / 4) * both.arrivalsS) < 1e-9, 'b runs on one of the two shapes: three ladders of four');
  assert.ok(Math.abs(restricted.leastS - (3 / 4) * both.leastS) < 1e-9, `${restricted.leastS}`);
  assert.ok(Math.abs(plan(3).leastS - both.leastS - 2 * probeS) < 1e-9, 'one probe a router, not one a ladder');
  assert.ok(Math.abs(plan(3, { b: ['other'] }).leastS - restricted.leastS - 2 * probeS) < 1e-9, 'b is probed on its one shape');
});

test('the full run: loads 0.7 and 1 on every shape, the session shapes and the new system prompt on 8 replicas only, prefix-router/4-workers on sp-32x32 and multi-turn-chat, /2-gateways on those and the session shapes, within 3.75 hours by its plan', () => {
  assert.deepEqual(FULL_RUN.loads, [0.7, 1]);
  const shapes = peerShapes(DEFAULT_WORKLOAD_DIR).filter((s) => FULL_RUN.shapes.includes(s.name));
  assert.equal(shapes.length, 8);
  const sessions = shapes.filter((s) => s.sessions);
  assert.deepEqual(sessions.map((s) => s.name), ['conversation', 'long-context']);
  const routers = ROUTERS.map((r) => r.name);
  const o = { shapes, replicaCounts: FULL_RUN.replicas, loads: FULL_RUN.loads, durationS: FULL_RUN.durationS, probeRequests: 30, shapeReplicas: FULL_RUN.shapeReplicas };
  const plan = runPlan({ ...o, routerShapes: FULL_RUN.routerShapes }, routers);
  const everyShape = runPlan(o, routers);
  const variants = runPlan({ ...o, probeRequests: 0, shapes: shapes.filter((s) => !['sp-32x32', 'multi-turn-chat'].includes(s.name)) }, ['prefix-router/4-workers']);
  const gateways = runPlan({ ...o, probeRequests: 0, shapes: shapes.filter((s) => !['sp-32x32', 'multi-turn-chat', ...sessions.map((x) => x.name)].includes(s.name)) }, ['prefix-router/2-gateways']);
  assert.ok(Math.abs(everyShape.leastS - plan.leastS - variants.leastS - gateways.leastS) < 1e-6, 'four worker VMs skip six shapes, two gateways four (and are probed once per replica count either way)');
  const on3 = runPlan({ ...o, probeRequests: 0, shapes: sessions, replicaCounts: [3], shapeReplicas: undefined }, ['r']);
  const sessionsEverywhere = runPlan({ ...o, shapeReplicas: undefined, routerShapes: FULL_RUN.routerShapes }, routers);
  assert.ok(sessionsEverywhere.leastS > plan.leastS + on3.leastS * (routers.length - 1) - 1e-6, 'no session point on 3 replicas');
  assert.ok(plan.leastS / 3600 < 3.75, `at least ${plan.leastS / 3600} h`);
});

test('the new system prompt: one prompt for every measured request, after 400+ warm-up requests of 32 other groups at half the rate, which the plan counts', () => {
  const shape = peerShapes(DEFAULT_WORKLOAD_DIR).find((s) => s.name === 'new-system-prompt')!;
  assert.equal(shape.kind, 'hot-spot');
  const point = pointWorkload(shape, 8, 0.7, 20, 1);
  const reqs = point.workload.requests;
  const warm = reqs.filter((r) => r.warmup), measured = reqs.filter((r) => !r.warmup);
  assert.ok(warm.length >= 400 && measured.length >= 0.7 * 20 * point.rate * 0.9, `${warm.length} warm-up, ${measured.length} measured`);
  assert.ok(reqs.every((r, i) => r.id === i && (i === 0 || r.arrivalUs > reqs[i - 1]!.arrivalUs)), 'in arrival order, ids in order');
  assert.ok(warm.every((r) => r.arrivalUs < measured[0]!.arrivalUs), 'the warm-up first');
  assert.equal(new Set(measured.map((r) => r.group)).size, 1);
  assert.equal(new Set(warm.map((r) => r.group)).size, 32);
  // Nothing the warm-up sent is a prefix of the new prompt's requests.
  assert.ok(measured.slice(0, 20).every((m) => warm.every((w) => sharedPrefixTokens(w, m) === 0)));
  const spanS = (measured[measured.length - 1]!.arrivalUs - measured[0]!.arrivalUs) / 1e6;
  assert.ok(Math.abs(point.windowS - spanS) < 1e-9, `the window is the measured requests' span, ${point.windowS} s`);
  const o = { shapes: [shape], replicaCounts: [8], loads: [0.7], durationS: 20, probeRequests: 0 };
  // The warm-up at half the rate, which the plan counts.
  const warmS = measured[0]!.arrivalUs / 1e6;
  assert.ok(warmS > 1.6 * warm.length / point.rate && warmS < 2.4 * warm.length / point.rate, `${warm.length} warm-up requests over ${warmS} s at ${point.rate} req/s`);
  assert.ok(Math.abs(runPlan(o, ['r']).arrivalsS - (2 * warm.length + measured.length) / point.rate) < 1e-9, 'the plan counts the warm-up');
});

test("a session shape's point: a warm-up of the sessions' turns, then a measured window near the nominal rate; each request the session so far; the same sessions at every load; its SLO is bench:routing's", () => {
  const shapes = peerShapes(DEFAULT_WORKLOAD_DIR);
  for (const [name, warmupS, windowS, least, sloMs] of [['conversation', 150, 80, 200, 2000], ['long-context', 60, 120, 70, 10000]] as const) {
    const shape = shapes.find((s) => s.name === name)!;
    assert.deepEqual([shape.sessions!.warmupS, shape.sessions!.windowS], [warmupS, windowS]);
    assert.equal(shapeSloMs(shape), sloMs);
    const at = (load: number, durationS = 20) => pointWorkload(shape, 8, load, durationS, 1);
    const point = at(0.7);
    assert.equal(point.rate, Math.round(SESSION_REFERENCE_RPS[name]![8]! * 0.7 * 100) / 100);
    assert.equal(point.windowS, windowS, 'a window of its own length when --duration-s is shorter');
    const reqs = point.workload.requests;
    const measured = reqs.filter((r) => !r.warmup);
    assert.ok(reqs.every((r) => (r.warmup ? r.arrivalUs < warmupS * 1e6 : r.arrivalUs >= warmupS * 1e6 && r.arrivalUs < (warmupS + windowS) * 1e6)), `${name}: warm-up before the window, nothing after it`);
    assert.ok(measured.length >= least, `${name}: ${measured.length} measured`);
    const ratio = measured.length / windowS / point.rate;
    assert.ok(ratio > 0.7 && ratio < 1.4, `${name}: the window's arrivals at ${ratio.toFixed(2)}x the nominal rate (a cold start reaches a third of it)`);
    const sessionsOf = (w: SimRequest[]) => {
      const m = new Map<string, SimRequest[]>();
      for (const r of w) m.set(r.group, [...(m.get(r.group) ?? []), r]);
      return m;
    };
    const sessions = sessionsOf(reqs);
    assert.ok([...sessions.values()].some((turns) => turns[0]!.warmup && !turns[turns.length - 1]!.warmup), `${name}: sessions begun in the warm-up go on in the window`);
    for (const [group, turns] of sessions) {
      for (let k = 1; k < turns.length; k++) {
        assert.ok(turns[k]!.arrivalUs > turns[k - 1]!.arrivalUs, `${name} ${group}: turns in order`);
        assert.ok(turns[k]!.prompt.startsWith(turns[k - 1]!.prompt) && turns[k]!.prompt.length > turns[k - 1]!.prompt.length, `${name} ${group}: each turn holds the one before`);
      }
    }
    // Another load starts the same sessions sooner or later, so the window cuts them elsewhere.
    for (const [group, turns] of sessionsOf(at(1).workload.requests)) {
      const other = sessions.get(group);
      if (!other) continue;
      const n = Math.min(turns.length, other.length);
      assert.deepEqual(turns.slice(0, n).map((r) => r.prompt), other.slice(0, n).map((r) => r.prompt), `${name} ${group}: the same session at each load`);
    }
    assert.equal(at(0.7, 200).windowS, 200, '--duration-s longer than the window lengthens it');
    assert.throws(() => at(0.7, 100_000), new RegExp(`^Error: ${name}: its \\d+ sessions start within \\d+ s at [\\d.]+ req/s, short of the 100${warmupS === 150 ? '150' : '060'} s asked for`));
    assert.throws(() => shape.referenceRps!(32), new RegExp(`^Error: ${name}: round robin's capacity is known for 3, 8 and 16 replicas, not 32`));
    const plan = runPlan({ shapes: [shape], replicaCounts: [8], loads: [0.7], durationS: 20, probeRequests: 0 }, ['r']);
    assert.equal(plan.arrivalsS, warmupS + windowS, 'the plan counts the warm-up and the window');
  }
});

test("the session shapes' replicas take prompts past Qwen2.5's native 32k tokens, as bench:routing's engines do (YaRN); the simulator's default refuses them", async () => {
  const shape = peerShapes(DEFAULT_WORKLOAD_DIR).find((s) => s.name === 'long-context')!;
  assert.equal(shape.maxModelLen, ENGINE_MAX_MODEL_LEN);
  const longest = Math.max(...pointWorkload(shape, 8, 1, 20, 1).workload.requests.map((r) => r.promptTokens + r.outputTokens));
  assert.ok(longest > 32_768 && longest <= ENGINE_MAX_MODEL_LEN, `${longest} tokens`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-peers-context-'));
  const prompt = 'abcd'.repeat(40_000);
  const status = async (maxModelLen?: number) => {
    const sims = await startReplicaSet(1, null, join(dir, 'replicas.log'), 1000, maxModelLen);
    try {
      const res = await fetch(`${sims.urls[0]}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt, max_tokens: 2 }) });
      await res.text();
      return res.status;
    } finally {
      await sims.stop();
    }
  };
  try {
    assert.equal(await status(shape.maxModelLen), 200);
    assert.equal(await status(), 400);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the session shapes' reference rates are round robin's capacity by bench:routing's calculation", async () => {
  for (const replicas of [3, 8, 16]) {
    const ladder = buildLadderShapes({ workloadDir: DEFAULT_WORKLOAD_DIR, seed: 1, replicas, requestScale: 1, maxLoad: 1.1 });
    for (const name of Object.keys(SESSION_REFERENCE_RPS)) {
      const capacity = await measureCapacity(ladder.find((s) => s.name === name)!, { seed: 1 });
      const ours = SESSION_REFERENCE_RPS[name]![replicas]!;
      assert.ok(Math.abs(ours / capacity.rps - 1) < 0.01, `${name} on ${replicas}: ${ours} against ${capacity.rps}`);
    }
  }
});

test("the Mooncake trace's reference rates are round robin's capacity on it in bench:routing's simulation", async () => {
  for (const replicas of [3, 8, 16]) {
    const shape = buildLadderShapes({ workloadDir: DEFAULT_WORKLOAD_DIR, seed: 1, replicas, requestScale: 1, maxLoad: 1.1, trace: { file: MOONCAKE_CONVERSATION_TRACE, replicas, limit: Infinity } }).find((s) => s.name === 'trace')!;
    const capacity = await measureCapacity(shape, { seed: 1 });
    assert.equal(capacity.method, 'saturation');
    assert.ok(Math.abs(TRACE_REFERENCE_RPS[replicas]! / capacity.rps - 1) < 0.01, `${replicas}: ${TRACE_REFERENCE_RPS[replicas]} against ${capacity.rps}`);
  }
});

test("the Mooncake trace's point: the trace from its start at the point's rate, a warm-up of 300 s unmeasured, then the window; requests past the replicas' context left out", () => {
  const shape = peerShapes(DEFAULT_WORKLOAD_DIR).find((s) => s.name === 'mooncake-conversation')!;
  assert.equal(shape.kind, 'conversation');
  assert.equal(shapeSloMs(shape), 10_000);
  assert.equal(shape.maxModelLen, ENGINE_MAX_MODEL_LEN);
  const point = pointWorkload(shape, 16, 0.7, 20, 1);
  assert.equal(point.rate, Math.round(TRACE_REFERENCE_RPS[16]! * 0.7 * 100) / 100);
  assert.equal(point.windowS, 180);
  const reqs = point.workload.requests;
  assert.ok(reqs.every((r) => (r.warmup ? r.arrivalUs < 300e6 : r.arrivalUs >= 300e6 && r.arrivalUs < 480e6)), 'warm-up before the window, nothing after it');
  const measured = reqs.filter((r) => !r.warmup);
  assert.ok(measured.length > 350, `${measured.length} measured`);
  assert.ok(reqs.every((r) => r.promptTokens + r.outputTokens <= ENGINE_MAX_MODEL_LEN));
  // Later turns of a conversation in the window hold an earlier request's prompt start, found in the warm-up or the window.
  const sharing = measured.filter((m) => reqs.some((r) => r.arrivalUs < m.arrivalUs && sharedPrefixTokens(r, m) >= 2 * 512));
  assert.ok(sharing.length > measured.length / 10, `${sharing.length} of ${measured.length} continue an earlier request`);
  // The same trace, sooner or later: a higher load replays more of it in the same seconds.
  assert.ok(pointWorkload(shape, 16, 1, 20, 1).workload.requests.length > reqs.length);
  assert.throws(() => pointWorkload(shape, 16, 1.5, 20, 1), /^Error: mooncake-conversation: the trace's \d+ requests arrive within \d+ s at [\d.]+ req\/s, short of the 480 s asked for/);
  assert.throws(() => shape.referenceRps!(32), /^Error: mooncake-conversation: round robin's capacity is known for 3, 8, 16 replicas, not 32/);
  assert.equal(runPlan({ shapes: [shape], replicaCounts: [16], loads: [0.7], durationS: 20, probeRequests: 0 }, ['r']).arrivalsS, 480);
});

test('smoke, sessions: every request is served, the window\'s measured; later turns find their session cached; goodput against the shape\'s own SLO', async () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-peers-sessions-'));
  const lines: string[] = [];
  try {
    const result = await runPeersBench({
      out, routers: ['round-robin', 'prefix-router'], shapes: [SMOKE_SESSION_SHAPE], replicaCounts: [2], loads: [1], durationS: 1, seed: 5,
      requestTimeoutMs: 10_000, probeRequests: 0, inferencePerf: false, log: (l) => lines.push(l),
    });
    const stream = pointWorkload(SMOKE_SESSION_SHAPE, 2, 1, 1, 5).workload.requests;
    const warmups = stream.filter((r) => r.warmup).length;
    const expected = stream.length - warmups;
    assert.ok(expected >= 15 && warmups >= 5, `${warmups} warm-up and ${expected} measured requests`);
    const arrived = expected / SMOKE_SESSION_SHAPE.sessions!.windowS;
    for (const r of result.runs) {
      assert.deepEqual([r.sent, r.warmupRequests], [expected, warmups], `${r.router}: the window's requests are measured, the warm-up's are not`);
      assert.equal(r.ok, r.sent, `${r.router}: ${r.errors.join(' | ')}`);
      assert.ok(Math.abs(r.arrivedRps! - arrived) < 0.01, `${r.router}: arrived ${r.arrivedRps} req/s, the stream's ${arrived}`);
      assert.ok(r.hitRate > 0.3, `${r.router}: hit rate ${r.hitRate}`);
    }
    assert.equal(lines.filter((l) => new RegExp(` smoke-sessions@2 load 1 \\(12 req/s, [\\d.]+ arrived in the window after ${warmups} warm-up requests\\): ok `).test(l)).length, 2);
    assert.deepEqual(result.goodput.map((g) => g.sloMs), [300, 300]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the load generator spreads requests over several entry points in turn, as a load balancer over gateways', async () => {
  const hits = [0, 0];
  const servers = hits.map((_, i) => http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits[i]!++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"choices":[{"text":"x"}],"usage":{"completion_tokens":1}}\n\ndata: [DONE]\n\n');
    });
  }));
  try {
    const urls = await Promise.all(servers.map((s) => new Promise<string>((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)))));
    const requests: SimRequest[] = [0, 1, 2, 3, 4].map((id) => ({ id, arrivalUs: id * 1000, prompt: 'p', promptTokens: 1, blockHashes: [], outputTokens: 1, group: 'g' }));
    const { records } = await runLoad(requests, { url: urls[0]!, urls, model: 'm', requestTimeoutMs: 5000 });
    assert.deepEqual(records.map((r) => r.ok), [true, true, true, true, true]);
    assert.deepEqual(hits, [3, 2]);
    hits.fill(0);
    await runLoad(requests.slice(0, 2), { url: urls[1]!, model: 'm', requestTimeoutMs: 5000 });
    assert.deepEqual(hits, [0, 2], 'one entry point without urls');
  } finally {
    for (const s of servers) s.close();
  }
});

test('goodput is the highest offered rate meeting the SLO with at most 1% failed', () => {
  const run = (load: number, p95: number, tput: number, failed = 0): RunResult => ({
    router: 'r', shape: SMOKE_SHAPE.name, replicas: 2, load, offeredRps: load * 10, sent: 100, ok: 100 - failed, failed, errors: [],
    ttftMs: { p50: p95 / 2, p95, p99: p95 }, e2eP50Ms: 0, e2eP95Ms: 0, throughputRps: tput, outputTokensPerS: 0, hitRate: 0.5, replicaShare: [0.5, 0.5], routerCpuCores: 0.1, addedLatencyMs: { p50: 0.4, p95: 1 },
    served: { promptTokensPerRequest: 220, outputTokensPerRequest: 8, e2eMeanMs: 100 },
  });
  const slo = ttftSloMs(SMOKE_SHAPE.promptTokens);
  const rows = goodputRows([run(0.4, slo - 1, 4), run(0.7, slo, 7, 2), run(1, slo + 1, 9)], [SMOKE_SHAPE]);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.goodputRps, 4, 'the 0.7 point failed 2%, the 1.0 point missed the SLO');
  assert.equal(rows[0]!.ttftP95At70, slo);
  assert.equal(rows[0]!.addedLatencyP50Ms, 0.4);
});

test('CPU seconds of this process tree come from /proc and grow with work', () => {
  const a = cpuSeconds(process.pid);
  let x = 0;
  const until = Date.now() + 150;
  while (Date.now() < until) x += Math.sqrt(x + 1);
  assert.ok(cpuSeconds(process.pid) > a);
  assert.equal(cpuSeconds(-1), 0);
});

test('smoke: every router that can run here serves the same stream; the others are skipped with a reason', async () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-peers-'));
  const lines: string[] = [];
  try {
    const result = await runPeersBench({
      out, routers: ROUTERS.map((r) => r.name), shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1], durationS: 1.5, seed: 3,
      requestTimeoutMs: 30_000, probeRequests: 3, probeWarmup: 40, inferencePerf: false, log: (l) => lines.push(l),
    });
    const ran = result.routers.filter((r) => r.status === 'ran').map((r) => r.name);
    assert.ok(ran.includes('round-robin') && ran.includes('prefix-router'), `ran: ${ran.join(', ')}`);
    for (const s of result.routers.filter((r) => r.status === 'skipped')) {
      assert.ok(s.detail.length > 0);
      assert.ok(lines.some((l) => l.startsWith(`skipping ${s.name}: `)), `a line for ${s.name}`);
    }
    assert.deepEqual(result.routers.filter((r) => r.status === 'failed'), []);
    for (const name of ran) {
      const r = result.runs.find((x) => x.router === name)!;
      assert.ok(r, `a run for ${name}`);
      assert.equal(r.ok, r.sent, `${name}: ${r.errors.join(' | ')}`);
      assert.ok(r.sent > 0);
      assert.ok(r.hitRate > 0 && r.hitRate < 1, `${name} hit rate ${r.hitRate}`);
      assert.ok(Math.abs(r.replicaShare.reduce((a, b) => a + b, 0) - 1) < 0.01);
      assert.ok(r.ttftMs.p50 > 0 && r.ttftMs.p95 >= r.ttftMs.p50);
      assert.ok(r.routerCpuCores >= 0);
      // prefix-router's control plane, off the request path, is a part of its router CPU; other routers have none.
      if (name.startsWith('prefix-router') && name !== 'prefix-router/start') {
        assert.ok(r.controlPlaneCpuCores !== undefined && r.controlPlaneCpuCores >= 0 && r.controlPlaneCpuCores <= r.routerCpuCores + 0.001, `${name}: ${r.controlPlaneCpuCores} of ${r.routerCpuCores}`);
      } else assert.equal(r.controlPlaneCpuCores, undefined, name);
      const probe = result.addedLatency!.filter((a) => a.router === name);
      assert.deepEqual(probe.map((a) => [a.replicas, a.warmupRequests, a.pairs]), [[2, 40, 3]], `${name}: one probe, after the warm-up asked for`);
      assert.deepEqual(r.addedLatencyMs, { p50: probe[0]!.p50, p95: probe[0]!.p95 });
      assert.ok(lines.some((l) => l.startsWith(name) && /added latency at idle, 2 replicas, after 40 warm-up requests \([\d.]+ s\): p50 -?[\d.]+ ms, p95 -?[\d.]+ ms$/.test(l)), `${name}: a probe line`);
      assert.equal(r.served.outputTokensPerRequest, 8, `${name}: the replicas generated what was asked`);
      assert.ok(r.served.promptTokensPerRequest > 0 && r.served.e2eMeanMs > 0);
      const phases = r.phasesS!;
      assert.deepEqual(Object.keys(phases), ['probe', 'replicas', 'previous stop', 'router', 'counters', 'arrivals', 'drain'], `${name}: the phases in the order they ran`);
      assert.ok(Object.values(phases).every((s) => s >= 0), `${name}: ${JSON.stringify(phases)}`);
      assert.ok(phases.arrivals! > 0.5 * r.sent / r.offeredRps, `${name}: the arrival window is most of the stream's span (${phases.arrivals} s)`);
    }
    assert.equal(lines.filter((l) => /^\s+phases s: probe [\d.]+, replicas [\d.]+, previous stop [\d.]+, router [\d.]+, counters [\d.]+, arrivals [\d.]+, drain [\d.]+$/.test(l)).length, result.runs.length, 'one phase line a point');
    assert.match(lines.find((l) => l.startsWith('plan: '))!, /min of arrivals/);
    assert.match(renderTable(result), /goodput/);
    assert.match(renderTable(result), /added latency at idle/);
    assert.match(renderTable(result), /^prefix-router\t.*\t[\d.]+ \(control plane [\d.]+\)\t/m);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('probe only: each router\'s added latency after the warm-up asked for, no load points; a bad warm-up count is refused naming it', async () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-peers-probe-'));
  const lines: string[] = [];
  try {
    const o = { out, routers: ['round-robin'], shapes: [SMOKE_SHAPE], replicaCounts: [1, 2], loads: [1], durationS: 1, seed: 2, requestTimeoutMs: 10_000, probeRequests: 4, inferencePerf: false, log: (l: string) => lines.push(l) };
    const result = await runPeersBench({ ...o, probeWarmup: 10, probeOnly: true });
    assert.deepEqual(result.runs, []);
    assert.deepEqual(result.addedLatency!.map((a) => [a.router, a.replicas, a.warmupRequests, a.pairs]), [['round-robin', 1, 10, 4], ['round-robin', 2, 10, 4]]);
    for (const a of result.addedLatency!) assert.ok(Number.isFinite(a.p50) && a.p95 >= a.p50, JSON.stringify(a));
    assert.match(renderTable(result), /round-robin\t2\t10\t4\t/);
    for (const bad of [-1, 1.5, NaN]) await assert.rejects(runPeersBench({ ...o, probeWarmup: bad }), /^Error: probeWarmup must be a whole number >= 0; got /);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const r = await runScript('bench:peers', ['--probe-warmup', 'many'], 60_000);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--probe-warmup must be a whole number >= 0; got 'many'/);
});

test('--baseline: each prefix-router layout also from another build, as NAME@baseline; a missing build is refused', async () => {
  const bundle = join(REPO, 'dist/prefix-router.js');
  assert.equal(routerNamed('round-robin@baseline', bundle), undefined, 'only prefix-router layouts have a baseline');
  assert.equal(routerNamed('prefix-router/4-gateways@baseline'), undefined, 'no baseline given');
  assert.match(routerNamed('prefix-router/2-gateways@baseline', '/nowhere/dist/prefix-router.js')!.unavailable() ?? '', /^\/nowhere\/dist\/prefix-router\.js is missing/);
  const out = mkdtempSync(join(tmpdir(), 'bench-peers-baseline-'));
  const lines: string[] = [];
  try {
    // This tree's own build stands in for another one.
    const result = await runPeersBench({
      out, routers: ['prefix-router/2-gateways', 'prefix-router/2-gateways@baseline'], baseline: bundle, shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1],
      durationS: 1, seed: 2, requestTimeoutMs: 10_000, probeRequests: 3, probeWarmup: 5, probeOnly: true, idleCpuS: 0.5, inferencePerf: false, log: (l) => lines.push(l),
    });
    assert.deepEqual(result.routers.map((r) => [r.name, r.status]), [['prefix-router/2-gateways', 'ran'], ['prefix-router/2-gateways@baseline', 'ran']]);
    assert.deepEqual(result.addedLatency!.map((a) => a.router), ['prefix-router/2-gateways', 'prefix-router/2-gateways@baseline']);
    // With no traffic, each layout's CPU: its gateways' ticks and polls, and the control plane's scrapes.
    for (const a of result.addedLatency!) {
      assert.equal(a.idleCpuS, 0.5);
      assert.ok(a.idleCpuCores! > 0 && a.idleCpuCores! < 2 && a.idleControlCpuCores! > 0 && a.idleControlCpuCores! <= a.idleCpuCores!, JSON.stringify(a));
    }
    assert.equal(lines.filter((l) => / idle CPU [\d.]+ cores \(control plane [\d.]+\) over 0.5 s$/.test(l)).length, 2);
    assert.match(renderTable(result), /^prefix-router\/2-gateways\t2\t5\t3\t[\d.]+\t[\d.]+\t[\d.]+ \([\d.]+\)$/m);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const r = await runScript('bench:peers', ['--baseline', '/nowhere/dist/prefix-router.js', '--routers', 'prefix-router'], 60_000);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /--baseline: \/nowhere\/dist\/prefix-router\.js is missing/);
  // A layout named with its @baseline as well runs once as each.
  const dir = mkdtempSync(join(tmpdir(), 'bench-peers-baseline-twice-'));
  try {
    const twice = await runScript('bench:peers', ['--smoke', '--probe-only', '--probe-pairs', '2', '--probe-warmup', '0', '--baseline', bundle,
      '--routers', 'prefix-router,prefix-router@baseline', '--out', dir], 60_000);
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stderr, /^plan: the added-latency probe of 2 routers/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the production layouts run when named: a standalone Envoy of 16 worker VMs, and two gateways of two (Istio)', async () => {
  for (const name of ['prefix-router/16-workers', 'prefix-router/2-gateways-2-workers']) assert.ok(!ROUTERS.some((r) => r.name === name), `${name} is named only`);
  assert.match(routerNamed('prefix-router/16-workers')!.label!, /one gateway of 16 worker VMs/);
  assert.match(routerNamed('prefix-router/2-gateways-2-workers')!.label!, /^2 gateways of 2 worker VMs each/);
  const out = mkdtempSync(join(tmpdir(), 'bench-peers-layouts-'));
  try {
    const result = await runPeersBench({
      out, routers: ['prefix-router/16-workers', 'prefix-router/2-gateways-2-workers'], shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1],
      durationS: 1, seed: 3, requestTimeoutMs: 10_000, probeRequests: 3, probeWarmup: 20, probeOnly: true, idleCpuS: 0, inferencePerf: false, log: () => {},
    });
    assert.deepEqual(result.routers.map((r) => [r.name, r.status]), [['prefix-router/16-workers', 'ran'], ['prefix-router/2-gateways-2-workers', 'ran']]);
    for (const a of result.addedLatency!) assert.ok(a.pairs === 3 && Number.isFinite(a.p50) && Number.isFinite(a.p95), JSON.stringify(a));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('each load point runs every router back to back, the order turning at each load, so a drift over the run weighs on both alike', async () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-peers-order-'));
  try {
    const result = await runPeersBench({
      out, routers: ['round-robin', 'prefix-router'], shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [0.5, 1, 1.5], durationS: 0.5, seed: 4,
      requestTimeoutMs: 10_000, probeRequests: 0, inferencePerf: false, log: () => {},
    });
    assert.deepEqual(result.runs.map((r) => [r.router, r.load]), [
      ['round-robin', 0.5], ['prefix-router', 0.5], ['prefix-router', 1], ['round-robin', 1], ['round-robin', 1.5], ['prefix-router', 1.5],
    ]);
    assert.deepEqual(result.routers.map((r) => [r.name, r.status]), [['round-robin', 'ran'], ['prefix-router', 'ran']]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('requestsReport: a measured request is set against the most of its prompt a replica had prefilled by the time it was sent', () => {
  // Prompts of 16-token blocks: a 2048-token document (128 blocks), its first 1536 tokens, the document and more.
  const blocks = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  const req = (id: number, blockHashes: number[]) => ({ id, arrivalUs: id * 1000, prompt: '', promptTokens: blockHashes.length * BLOCK_TOKENS, blockHashes, outputTokens: 1, group: 'g' });
  const requests = [req(0, blocks(1, 128)), req(1, [...blocks(1, 96), ...blocks(900, 32)]), req(2, blocks(1, 160)), req(3, [7777]), req(4, blocks(1, 128))];
  const rec = (id: number, sentMs: number, cachedTokens: number, replica: string, extra: object = {}) =>
    ({ id, ok: true, status: 200, sentMs, ttftMs: 100, e2eMs: 200, outputTokens: 1, cachedTokens, replica, group: 'g', ...extra });
  const records = [
    rec(0, 0, 0, 'r0', { warmup: true }), // not measured, but its replica holds its prompt from 100 ms
    rec(1, 50, 0, 'r1'), // sent before any first token: nothing was cached anywhere
    rec(2, 200, 0, 'r2'), // r0 had 2048 of its tokens, r1 1536: it found none on r2
    rec(3, 300, 0, 'r0'), // shares nothing
    rec(4, 400, 0, 'r0', { ok: false, status: 500 }), // failed: neither measured nor a holder
  ];
  const left = cacheLeft(records, requests);
  assert.deepEqual(left.map((x) => [x.record.id, x.availableTokens, x.holder]), [[1, 0, null], [2, 2048, 'r0'], [3, 0, null]]);
  assert.equal(cacheLeftLine(left), '  cached elsewhere: 1 of 3 measured requests found 1024+ tokens fewer cached than a replica had prefilled already (2048 tokens): #2 0/2048 on r2 (held on r0) TTFT 100');
  // With its replica holding all of it, nothing is listed.
  records[2] = rec(2, 200, 2048, 'r0');
  assert.match(cacheLeftLine(cacheLeft(records, requests)), /: 0 of 3 measured requests .* already \(0 tokens\)$/);
});

test('requestsReport (smoke): a run directory\'s session point is reported with what its rebuilt stream says was cached elsewhere', () => {
  const dir = mkdtempSync(join(tmpdir(), 'requests-report-'));
  const lines: string[] = [];
  const write = process.stdout.write;
  try {
    const shape = peerShapes(DEFAULT_WORKLOAD_DIR).find((s) => s.name === 'long-context')!;
    const requests = pointWorkload(shape, 3, 0.7, 20, 1).workload.requests;
    // The stream's first two requests: a session's first step, then its second, sent to another replica once the first had its first token.
    const second = requests.find((r) => r.group === requests[0]!.group && r !== requests[0])!;
    const rec = (r: SimRequest, sentMs: number, cachedTokens: number, replica: string) =>
      JSON.stringify({ id: r.id, ok: true, status: 200, sentMs, ttftMs: 1000, e2eMs: 2000, outputTokens: 10, cachedTokens, replica, group: r.group });
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'logs', 'requests_prefix-router_long-context_3_0.7.jsonl'), [rec(requests[0]!, 0, 0, 'replica-0'), rec(second, 5000, 0, 'replica-1')].join('\n') + '\n');
    process.stdout.write = ((chunk: string) => { lines.push(String(chunk)); return true; }) as typeof process.stdout.write;
    assert.equal(requestsReportMain([dir]), 0);
  } finally {
    process.stdout.write = write;
    rmSync(dir, { recursive: true, force: true });
  }
  const out = lines.join('');
  assert.match(out, /^prefix-router_long-context_3_0\.7\n/);
  assert.match(out, /cached elsewhere: 1 of 2 measured requests found 1024\+ tokens fewer cached than a replica had prefilled already \(\d+ tokens\): #\d+ 0\/\d+ on replica-1 \(held on replica-0\)/);
});

test('requestsReport: a request is warm with its shared prefix cached, else the first of its group, a copy to another replica, or a refill of one that lost it', () => {
  const rec = (id: number, sentMs: number, group: string, replica: string, cachedTokens: number, ttftMs = 100) =>
    ({ id, ok: true, status: 200, sentMs, ttftMs, e2eMs: 1000, outputTokens: 1, cachedTokens, replica, group });
  const records = [
    rec(3, 30, 'g1', 'r1', 0), // its group went to r0 only: a copy
    rec(0, 0, 'g1', 'r0', 0), // the group's first
    rec(1, 10, 'g1', 'r0', 2048), // warm
    rec(2, 20, 'g2', 'r0', 16), // the group's first, a few blocks shared by chance
    rec(4, 40, 'g1', 'r0', 1024, 3000), // r0 had g1 before and lost half of it: a refill
  ];
  assert.deepEqual(classify(records, 2048).map((x) => [x.record.id, x.kind]), [[0, 'first'], [1, 'warm'], [2, 'first'], [3, 'copy'], [4, 'refill']]);
  const report = pointReport(records, null, 2048, 1700);
  assert.match(report[0]!, /5\/5 ok, 1 with TTFT > 1700 ms/);
  assert.ok(report.some((l) => /refill +1 requests, 1 slow/.test(l)));
});
