// Every tool a user runs with `npm run` answers --help, refuses an unknown flag, and (for those
// not smoke-run elsewhere) runs at a tiny size with the JSON shape it documents. The runs go
// through package.json's command line (npmScript.ts). Elsewhere: bench:filter in
// tests/bench/filter.test.ts, bench in tests/bench/gateway.test.ts, bench:gateway-overhead in
// tests/bench/gatewayOverhead.test.ts, bench:routing:seeds in tests/bench/routing-seeds.test.ts,
// chaos in tests/chaos/.
// bench:picker's smoke run is here; the picker itself is tested in tests/picker/.
// Sizes are tiny: what is asserted is that each tool still works, never how fast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runScript } from './npmScript.js';

const TOOLS = ['bench:filter', 'bench:routing', 'bench:routing:seeds', 'bench:control-plane', 'bench', 'bench:picker', 'bench:gateway-overhead', 'fuzz', 'chaos', 'validate'];
const WASM_BUILT = existsSync(`${ROOT}plugin/prefix-router.wasm`);

test('every tool answers --help with its usage (exit 0) and refuses an unknown flag (exit 2, naming it)', async () => {
  const runs = await Promise.all(TOOLS.flatMap((t) => [runScript(t, ['--help']), runScript(t, ['--no-such-flag'])]));
  TOOLS.forEach((t, i) => {
    const [help, bad] = [runs[2 * i], runs[2 * i + 1]];
    assert.equal(help.code, 0, `${t} --help: ${help.stderr}`);
    assert.match(help.stdout, /^usage: /, `${t} --help prints its usage`);
    assert.equal(bad.code, 2, `${t} --no-such-flag: exit ${bad.code}, ${bad.stderr}`);
    assert.match(bad.stderr, /--no-such-flag/, `${t} names the flag`);
    assert.match(bad.stderr, /usage: /, `${t} shows the usage`);
  });
});

test('bench:control-plane at a tiny size: scraping cases, a fleet poll case and the weight propagation p99', { skip: !WASM_BUILT && 'plugin/prefix-router.wasm not built' }, async () => {
  const r = await runScript('bench:control-plane', ['--json', '--replicas', '2', '--responses', 'filtered', '--seconds', '0.5', '--warmup', '0.2', '--rounds', '4', '--fleet-gateways', '3', '--fleet-placements', '8']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ['cases', 'fleetPolls', 'weightPropagationP99Ms', 'weightPropagationNote']);
  assert.equal(out.fleetPolls.length, 1);
  const f = out.fleetPolls[0];
  assert.deepEqual([f.replicas, f.gateways, f.placementsPerReport], [2, 3, 8]);
  // Each poll is answered with what the two other gateways placed in the round before.
  assert.equal(f.placementsPerAnswerMean, 16, JSON.stringify(f));
  assert.ok(f.pollUsMean > 0 && f.answerBytesMean > f.getBytes, JSON.stringify(f));
  assert.deepEqual(out.cases.map((c: { replicas: number; replicaResponse: string }) => [c.replicas, c.replicaResponse]), [[2, 'filtered']]);
  assert.deepEqual(Object.keys(out.cases[0]), ['replicas', 'intervalMs', 'cpuCores', 'scrapeP99Ms', 'replicaResponse']);
  assert.ok(Number.isFinite(out.cases[0].scrapeP99Ms), JSON.stringify(out));
  // Measured means every worker VM routed with each new weight set (the run throws otherwise).
  assert.ok(typeof out.weightPropagationP99Ms === 'number' && out.weightPropagationP99Ms > 0, out.weightPropagationNote);
  assert.match(out.weightPropagationNote, /^4 weight flips/);
});

test('bench:routing at a tiny size: one scenario, two policies, the documented JSON', { skip: !WASM_BUILT && 'plugin/prefix-router.wasm not built' }, async () => {
  const r = await runScript('bench:routing', ['--fixed-overload', '--json', '--quick', '--only', 'sp-32x32', '--policies', 'round-robin,prefix-router/latency', '--requests-scale', '0.1']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ['seed', 'quick', 'stateDelivery', 'workloads', 'targets']);
  assert.deepEqual(out.workloads.map((w: { name: string }) => w.name), ['sp-32x32']);
  assert.deepEqual(out.workloads[0].policies.map((p: { name: string }) => p.name), ['round-robin', 'prefix-router/latency']);
  for (const p of out.workloads[0].policies) assert.ok(p.completed > 0 && p.hitRate >= 0 && p.hitRate <= 1, JSON.stringify(p));
});

test('bench:routing: a workload config it cannot read stops the run with exit 2 and the path', async () => {
  const r = await runScript('bench:routing', ['--quick', '--only', 'sp-32x32', '--workloads', '/nonexistent-workloads']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /cannot read workload config \/nonexistent-workloads\/llm-d-benchmark_shared_prefix_synthetic\.yaml\.in: ENOENT/);
  assert.equal(r.stdout, '', 'no scenario ran');
});

test('bench:picker at a tiny size: both paths measured, K pickers against one, the documented JSON', { skip: !(WASM_BUILT && existsSync(`${ROOT}dist/prefix-router.js`)) && 'plugin/prefix-router.wasm or dist/ not built' }, async () => {
  const r = await runScript('bench:picker', ['--json', '--seconds', '1', '--warmup', '0', '--requests', '24', '--groups', '4', '--repeats', '1']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ['overhead', 'activeActive']);
  assert.deepEqual(out.overhead.paths.map((p: { path: string }) => p.path), ['in-proxy', 'picker']);
  for (const p of out.overhead.paths) assert.ok(p.requests > 0 && p.errors === 0 && p.latencyMs.p50 > 0, JSON.stringify(p));
  assert.deepEqual(Object.keys(out.overhead.paths[1].cpuUsPerRequest), ['gateway', 'picker']);
  assert.deepEqual(out.activeActive.runs.map((x: { pickers: number; ok: number }) => [x.pickers, x.ok]), [[1, 24], [3, 24]]);
  assert.ok(out.activeActive.runs.every((x: { hitRate: number }) => x.hitRate > 0 && x.hitRate <= 1), JSON.stringify(out.activeActive.runs));
  // Responses go through the pickers unless asked otherwise: without them the filter's work counts end at each decision.
  assert.equal(out.activeActive.options.responseProcessing, true);
});

test('bench:picker --gie-epp without the built picker: exit 1, one line naming it and peers:install', { skip: !(WASM_BUILT && existsSync(`${ROOT}dist/prefix-router.js`)) && 'plugin/prefix-router.wasm or dist/ not built' }, async () => {
  const empty = mkdtempSync(join(tmpdir(), 'no-peers-'));
  try {
    const r = await runScript('bench:picker', ['--gie-epp', '--only', 'overhead', '--seconds', '1'], 120_000, { ...process.env, PREFIX_ROUTER_PEERS_DIR: empty });
    assert.equal(r.code, 1, r.stderr);
    // (the build step before it reports on stderr too)
    assert.deepEqual(r.stderr.split('\n').filter((l) => l.startsWith('bench:picker')), [`bench:picker: --gie-epp: ${join(empty, 'bin/gie-epp')} is missing: npm run peers:install`]);
    assert.equal(r.stdout, '');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('bench:picker --no-response-processing: the active-active gateway skips response processing, and says so', { skip: !(WASM_BUILT && existsSync(`${ROOT}dist/prefix-router.js`)) && 'plugin/prefix-router.wasm or dist/ not built' }, async () => {
  const r = await runScript('bench:picker', ['--json', '--only', 'active-active', '--no-response-processing', '--requests', '8', '--groups', '2', '--repeats', '1']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.activeActive.options.responseProcessing, false);
  assert.deepEqual(out.activeActive.runs.map((x: { pickers: number; ok: number }) => [x.pickers, x.ok]), [[1, 8], [3, 8]]);
});

test('fuzz at a tiny size: the summary JSON, no trap', { skip: !WASM_BUILT && 'plugin/prefix-router.wasm not built' }, async () => {
  const r = await runScript('fuzz', ['--json', '--cases', '100', '--shards', '1', '--seed', '7']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ['cases', 'traps', 'unroutedWithoutError', 'details', 'findings']);
  assert.ok(out.cases >= 100, JSON.stringify(out));
  assert.deepEqual([out.traps, out.unroutedWithoutError, out.findings], [0, 0, []]);
});

test('validate: the repository is clean (JSON); a directory that is not a checkout is refused', async () => {
  const [json, notCheckout] = await Promise.all([runScript('validate', ['--json']), runScript('validate', ['/'])]);
  assert.equal(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout);
  assert.deepEqual(Object.keys(out), ['checks', 'findings']);
  assert.ok(out.checks.length > 10);
  assert.deepEqual(out.findings, []);
  assert.equal(notCheckout.code, 2);
  assert.match(notCheckout.stderr, /is not a prefix-router checkout/);
});
