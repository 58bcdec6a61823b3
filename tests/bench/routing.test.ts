// The routing-quality simulation: determinism, the oracle, Mooncake parsing, and
// a tiny end-to-end run through the real filter (plugin/prefix-router.wasm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { oracleHitRate } from '../../bench/routing/oracle.js';
import { MOONCAKE_BLOCK_TOKENS, arrivalsUs, mooncakePrompt, mooncakeWorkload, parseMooncake } from '../../bench/routing/mooncake.js';
import { runScenario } from '../../bench/routing/runner.js';
import { toJson } from '../../bench/routing/report.js';
import type { Scenario } from '../../bench/routing/scenarios.js';
import { sharedPrefixWorkload, uniqueWorkload } from '../../bench/routing/workloads.js';

const FIXTURE = fileURLToPath(new URL('../../bench/routing/fixtures/mooncake-sample.jsonl', import.meta.url));
const tinyShape = { numGroups: 4, promptsPerGroup: 6, systemPromptLen: 600, questionLen: 60, outputLen: 24, multiTurn: false };

function tinyScenario(name: string, n: number, variants: boolean): Scenario {
  return { name, kind: 'shared-prefix', replicas: 3, variants, build: () => sharedPrefixWorkload(name, 'tiny', tinyShape, n, 20, 7) };
}

test('oracle hit rate on a hand-computed workload', () => {
  const reqs = [
    { promptTokens: 50, blockHashes: [1, 2, 3] }, // nothing seen yet: 0
    { promptTokens: 50, blockHashes: [1, 2, 4] }, // blocks 1,2 seen: 32 tokens
    { promptTokens: 48, blockHashes: [1, 2, 3] }, // all seen, but the last token is always computed: 2 blocks, 32 tokens
    { promptTokens: 20, blockHashes: [9] },       // new: 0
  ];
  assert.equal(oracleHitRate(reqs), 64 / 168);
  assert.equal(oracleHitRate([]), 0);
});

test('Mooncake trace: parses records, shares text for equal hash ids, keeps lengths and times', () => {
  const text = readFileSync(FIXTURE, 'utf8');
  const records = parseMooncake(text, 'sample');
  assert.equal(records.length, 6);
  assert.deepEqual(records[1], { timestampMs: 250, inputLength: 1100, outputLength: 30, hashIds: [0, 1, 3] });
  const p0 = mooncakePrompt(records[0]!, 0, 1), p1 = mooncakePrompt(records[1]!, 1, 1), p3 = mooncakePrompt(records[3]!, 3, 1);
  assert.equal(p0.length, 1200 * 4);
  assert.equal(p1.length, 1100 * 4);
  const block = MOONCAKE_BLOCK_TOKENS * 4;
  assert.equal(p0.slice(0, 2 * block), p1.slice(0, 2 * block)); // ids 0, 1 shared
  assert.notEqual(p0.slice(2 * block, 2 * block + 100), p1.slice(2 * block, 2 * block + 100)); // id 2 vs 3
  assert.equal(p3.slice(0, p0.length), p0); // same ids, longer prompt
  const w = mooncakeWorkload('t', records, 1);
  assert.deepEqual(w.requests.map((r) => r.arrivalUs), [0, 250_000, 500_000, 900_000, 1_300_000, 1_700_000]);
  assert.deepEqual(w.requests.map((r) => r.promptTokens), [1200, 1100, 700, 1536, 300, 2000]);
  assert.equal(w.requests[0]!.group, 'h0');
  // request 1 shares 2 x 512 tokens = 64 blocks of 16 with request 0
  assert.deepEqual(w.requests[1]!.blockHashes.slice(0, 64), w.requests[0]!.blockHashes.slice(0, 64));
  assert.notEqual(w.requests[1]!.blockHashes[64], w.requests[0]!.blockHashes[64]);
  assert.ok(oracleHitRate(w.requests) > 0);
});

test('Mooncake trace: requests sharing a coarse timestamp arrive spread over its step; distinct timestamps are kept', () => {
  assert.deepEqual(arrivalsUs([100, 250, 900], 1), [0, 150_000, 800_000]);
  const ts = [0, 0, 0, 3000, 3000, 5999, 9000, 9000];
  const at = arrivalsUs(ts, 1);
  assert.deepEqual(arrivalsUs(ts, 1), at, 'the same seed, the same arrivals');
  assert.notDeepEqual(arrivalsUs(ts, 2), at);
  const within = (k: number, from: number, to: number) => assert.ok(at[k]! >= from * 1000 && at[k]! < to * 1000, `${k}: ${at[k]} not in [${from}, ${to}) ms`);
  [0, 1, 2].forEach((k) => within(k, 0, 3000));
  [3, 4].forEach((k) => within(k, 3000, 5999));
  assert.equal(at[5], 5_999_000, 'alone on its timestamp');
  [6, 7].forEach((k) => within(k, 9000, 9000 + 3000)); // the last step: the median step (3000 ms)
  assert.equal(new Set(at.slice(0, 3)).size, 3);
  // The workload is in arrival order, ids renumbered.
  const w = mooncakeWorkload('t', ts.map((t) => ({ timestampMs: t, inputLength: 600, outputLength: 5, hashIds: [0, 1] })), 1);
  assert.deepEqual(w.requests.map((r) => r.arrivalUs), [...at].sort((a, b) => a - b));
  assert.deepEqual(w.requests.map((r) => r.id), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('Mooncake trace: bad records are rejected with the line and field', () => {
  assert.throws(() => parseMooncake('{"timestamp": 1, "input_length": 10, "output_length": 1, "hash_ids": [1]}\n{"timestamp": 2}', 'f.jsonl'), /f\.jsonl:2: input_length must be a number >= 1/);
  assert.throws(() => parseMooncake('not json', 'f'), /f:1: not JSON/);
  assert.throws(() => parseMooncake('{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1, -2]}', 'f'), /hash_ids must be an array of non-negative integers/);
  assert.throws(() => parseMooncake('\n\n', 'f'), /no records/);
});

test('same seed, same JSON: a tiny run through every policy kind is deterministic', async () => {
  const run = async () => toJson([await runScenario(tinyScenario('tiny', 40, false), { seed: 3, policyFilter: ['round-robin', 'least-load', 'gie-style', 'prefix-router/latency'] })], { seed: 3, quick: true, stateDelivery: 'x' });
  const a = JSON.stringify(await run());
  const b = JSON.stringify(await run());
  assert.equal(a, b);
  assert.equal(JSON.parse(a).workloads[0].policies.length, 4);
});

test('end to end through the real wasm: every request completes, shares sum to 1, gateways report agreement', async () => {
  const r = await runScenario(tinyScenario('tiny-e2e', 60, true), { seed: 5, policyFilter: ['prefix-router'] });
  assert.deepEqual(r.policies.map((p) => p.name), ['prefix-router', 'prefix-router/latency', 'prefix-router/throughput', 'prefix-router/capacity', 'prefix-router/4-workers', 'prefix-router/2-gateways']);
  assert.deepEqual(r.filterWarnings, []);
  for (const p of r.policies) {
    assert.equal(p.completed, 60, p.name);
    assert.equal(p.rejected, 0);
    assert.ok(Math.abs(p.shares.reduce((a, b) => a + b, 0) - 1) < 1e-9, `${p.name} shares ${p.shares}`);
    assert.ok(p.throughputRps > 0 && p.ttftP95Ms >= p.ttftP50Ms && p.e2eP95Ms >= p.ttftP95Ms);
    assert.ok(p.hitRate > 0 && p.hitRate <= 1, `${p.name} hit ${p.hitRate}`);
    assert.ok(p.firstAdmissionHitRate <= r.oracleHitRate + 1e-9, `${p.name} beats the oracle`);
    assert.ok(p.routerTotalBlocks! > 0 && p.routerMatchedBlocks! > 0, `${p.name} saw the filter's prefix header`);
    assert.equal(p.routerStats!.routed >= 0, true);
  }
  const four = r.policies.find((p) => p.name === "prefix-router/4-workers")!;
  assert.ok(four.crossWorkerAgreement! >= 0 && four.crossWorkerAgreement! <= 1 && four.crossGatewayAgreement === undefined);
  const two = r.policies.find((p) => p.name === 'prefix-router/2-gateways')!;
  assert.ok(two.crossGatewayAgreement! >= 0 && two.crossGatewayAgreement! <= 1);
  assert.ok(two.sameEntryAgreement! >= 0 && two.sameEntryAgreement! <= 1);
});

test('unique prompts leave nothing for the oracle', () => {
  const w = uniqueWorkload('u', 100, 5, 30, 10, 1);
  assert.equal(oracleHitRate(w.requests), 0);
  assert.equal(w.requests.length, 30);
  assert.ok(w.requests.every((r, i) => i === 0 || r.arrivalUs > w.requests[i - 1]!.arrivalUs));
});
