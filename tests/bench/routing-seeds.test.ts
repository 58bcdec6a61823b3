// bench:routing:seeds: the ladder's rungs on several seeds. A tiny run through package.json's
// command line (two seeds, two baselines, two labels of the built wasm): the documented JSON,
// summaries that follow from the per-seed numbers, the ladder's own number on the same seed;
// and every flag's refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ROOT, runScript } from '../tools/npmScript.js';

const WASM_BUILT = existsSync(`${ROOT}plugin/prefix-router.wasm`);
const TINY = ['--points', 'sp-32x32:0.7', '--replicas', '2', '--requests-scale', '0.1'];

interface Cell { policy: string; ttftP95Ms: number; firstAdmissionHitRate: number; maxOverMeanLoad: number; completed: number }
interface Row { seed: number; capacityRps: number; offeredRps: number; requests: number; policies: Cell[] }
interface Summary { policy: string; medianTtftP95Ms: number; meanTtftP95Ms: number; worstTtftP95Ms: number; atOrBelow?: Record<string, number> }

test('bench:routing:seeds at a tiny size: per seed every policy, summaries consistent with the per-seed numbers, the ladder\'s p95', { skip: !WASM_BUILT && 'plugin/prefix-router.wasm not built' }, async () => {
  const [r, ladder] = await Promise.all([
    runScript('bench:routing:seeds', ['--json', ...TINY, '--seeds', '1-2', '--policies', 'round-robin,least-load,prefix-router', '--wasm', 'a=plugin/prefix-router.wasm,b=plugin/prefix-router.wasm']),
    runScript('bench:routing', ['--json', '--only', 'sp-32x32', '--replicas', '2', '--requests-scale', '0.1', '--loads', '0.7', '--extra-loads', 'none', '--no-variants', '--policies', 'round-robin,prefix-router']),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(doc), ['seeds', 'replicas', 'requestScale', 'baselines', 'points', 'filterWarnings']);
  assert.deepEqual([doc.seeds, doc.replicas, doc.requestScale, doc.baselines, doc.filterWarnings], [[1, 2], 2, 0.1, ['round-robin', 'least-load'], []]);
  assert.equal(doc.points.length, 1);
  const p = doc.points[0] as { shape: string; load: number; replicas: number; seeds: Row[]; summary: Summary[] };
  assert.deepEqual([p.shape, p.load, p.replicas], ['sp-32x32', 0.7, 2]);
  const names = ['round-robin', 'least-load', 'prefix-router@a', 'prefix-router@b'];
  assert.deepEqual(p.seeds.map((s) => s.seed), [1, 2]);
  for (const s of p.seeds) {
    assert.deepEqual(s.policies.map((c) => c.policy), names);
    assert.ok(s.capacityRps > 0 && s.offeredRps > 0 && s.offeredRps <= 0.7 * s.capacityRps + 1e-9, JSON.stringify(s));
    for (const c of s.policies) {
      assert.equal(c.completed, s.requests, c.policy);
      assert.ok(c.ttftP95Ms > 0 && c.firstAdmissionHitRate >= 0 && c.firstAdmissionHitRate <= 1 && c.maxOverMeanLoad >= 1, JSON.stringify(c));
    }
    // The same build under two labels routes the same arrivals alike.
    const [a, b] = [s.policies[2]!, s.policies[3]!];
    assert.deepEqual({ ...a, policy: '' }, { ...b, policy: '' });
  }
  assert.deepEqual(p.summary.map((x) => x.policy), names);
  for (const x of p.summary) {
    const p95s = p.seeds.map((s) => s.policies.find((c) => c.policy === x.policy)!.ttftP95Ms);
    assert.equal(x.medianTtftP95Ms, (p95s[0]! + p95s[1]!) / 2, x.policy);
    assert.equal(x.meanTtftP95Ms, (p95s[0]! + p95s[1]!) / 2, x.policy);
    assert.equal(x.worstTtftP95Ms, Math.max(...p95s), x.policy);
    if (!x.policy.startsWith('prefix-router')) { assert.equal(x.atOrBelow, undefined, x.policy); continue; }
    assert.deepEqual(Object.keys(x.atOrBelow!), doc.baselines);
    for (const base of doc.baselines as string[]) {
      const atOrBelow = p.seeds.filter((s) => s.policies.find((c) => c.policy === x.policy)!.ttftP95Ms <= s.policies.find((c) => c.policy === base)!.ttftP95Ms).length;
      assert.equal(x.atOrBelow![base], atOrBelow, `${x.policy} against ${base}`);
    }
  }
  assert.match(r.stderr, /^sp-32x32 at 70% of round robin's capacity, 2 replicas/m);
  assert.match(r.stderr, /<= round-robin +<= least-load/);
  // Seed 1 is the ladder's seed 1: the same capacity, arrivals and policies give the same p95 (the ladder's JSON has one decimal).
  assert.equal(ladder.code, 0, ladder.stderr);
  const rung = JSON.parse(ladder.stdout).workloads.find((w: { name: string }) => w.name === 'sp-32x32').rungs[0];
  for (const [name, ours] of [['round-robin', 'round-robin'], ['prefix-router', 'prefix-router@a']]) {
    const theirs = rung.policies.find((c: { name: string }) => c.name === name).ttftP95Ms;
    assert.ok(Math.abs(theirs - p.seeds[0]!.policies.find((c) => c.policy === ours)!.ttftP95Ms) <= 0.05, `${name}: ladder ${theirs}`);
  }
});

test('bench:routing:seeds refuses a bad flag: exit 2, the flag named, the usage shown', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /--points is required/],
    [['--points', 'nowhere:0.7'], /--points: unknown shape 'nowhere'; known: sp-150x5, sp-32x32, .*conversation, long-context/],
    [['--points', 'sp-32x32'], /--points: 'sp-32x32' is not SHAPE:LOAD/],
    [['--points', 'sp-32x32:0'], /--points: the load of 'sp-32x32:0' must be a positive number/],
    [['--points', 'sp-32x32:0.7,sp-32x32:0.7'], /--points: .* names a point twice/],
    [[...TINY, '--seeds', '3-1'], /--seeds: range '3-1' runs backwards/],
    [[...TINY, '--seeds', '1,x'], /--seeds must be a whole number from 0 to 4294967295; got 'x'/],
    [[...TINY, '--seeds', '1-2,2'], /--seeds: '1-2,2' names a seed twice/],
    [[...TINY, '--policies', 'round-robin,best'], /--policies: unknown policy 'best'; known: round-robin, least-load, .*prefix-router\/4-gateways/],
    [[...TINY, '--wasm', '/nonexistent.wasm'], /--wasm: cannot read '\/nonexistent\.wasm': ENOENT/],
    [[...TINY, '--wasm', 'plugin/prefix-router.wasm,x/prefix-router.wasm'], /--wasm: two builds are labelled alike/],
    [['--points', 'sp-32x32:0.7', '--replicas', '0'], /--replicas must be a whole number >= 1; got '0'/],
    [['--points', 'sp-32x32:0.7', '--requests-scale', 'lots'], /--requests-scale must be a positive number, got 'lots'/],
    [['--points', 'trace:0.7'], /--points: unknown shape 'trace'/],
    [['--points', 'trace:0.7', '--trace', '/nonexistent.jsonl'], /--trace: cannot read '\/nonexistent\.jsonl': ENOENT/],
    [['--points', 'trace:0.7', '--trace', 'package.json'], /--trace: package\.json:1: not JSON/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runScript('bench:routing:seeds', args, 60_000)));
  cases.forEach(([args, why], i) => {
    const r = runs[i]!;
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^bench:routing:seeds: ${why.source}`, 'm'), args.join(' '));
    assert.match(r.stderr, /usage: npm run bench:routing:seeds/);
    assert.equal(r.stdout, '', 'nothing ran');
  });
});

test('bench:routing:seeds --trace: a Mooncake trace is the point shape \'trace\', all of it at the load asked', { skip: !WASM_BUILT && 'plugin/prefix-router.wasm not built' }, async () => {
  const r = await runScript('bench:routing:seeds', ['--json', '--points', 'trace:0.7', '--trace', 'bench/routing/fixtures/mooncake-sample.jsonl', '--replicas', '2', '--seeds', '1', '--policies', 'round-robin,prefix-router']);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout).points[0] as { shape: string; replicas: number; seeds: Row[] };
  assert.deepEqual([p.shape, p.replicas], ['trace', 2]);
  const row = p.seeds[0]!;
  assert.equal(row.requests, 6);
  assert.ok(row.offeredRps > 0 && row.offeredRps <= 0.7 * row.capacityRps + 1e-9, JSON.stringify(row));
  for (const c of row.policies) assert.equal(c.completed, 6, c.policy);
});
