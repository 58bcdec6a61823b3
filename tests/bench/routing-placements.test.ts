// Smoke run of bench/routing/placements.ts (where one run's requests went, over time): a small
// rung with two gateways and the fixed-overload scenario alone, and bad arguments refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/routing/placements.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

test('placements: one entry point against two gateways at a rung, per window, sessions and waits', () => {
  const r = run('multi-turn-chat', '0.7', '2', '1', '1', '0.05');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^multi-turn-chat, 70% of round robin's capacity, 16 replicas, \d+ requests over [\d.]+ s, seed 1$/m);
  assert.match(r.stdout, /^prefix-router: TTFT p50 \d+ p95 \d+ ms, hit [\d.]+%, preemptions \d+$/m);
  assert.match(r.stdout, /^prefix-router\/2-gateways-1-workers: TTFT p50 \d+ p95 \d+ ms/m);
  // Ten windows a run, each with 16 replicas' counts.
  assert.equal((r.stdout.match(/^ {4} ?\d: (\d+ ){16} \(busiest \d+%\)/gm) ?? []).length, 20);
  assert.match(r.stdout, /^ {2}sessions \(or groups\) last sent to each replica: (\d+ ){15}\d+; moves \d+/m);
  assert.match(r.stdout, /^ {4}nothing prefilling: \d+, in the tail \d+$/m);
});

test('placements: a fixed-overload scenario with one entry point runs that one only', () => {
  const r = run('unique-prompts', 'fixed', '1', '1', '1', '0.05');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^unique-prompts, fixed overload, 3 replicas/m);
  assert.doesNotMatch(r.stdout, /gateways-/);
});

test('placements: unknown shapes and bad numbers are refused with the usage', () => {
  for (const [args, msg] of [
    [['no-such-shape', '0.7'], /no ladder shape 'no-such-shape'; known: /],
    [['no-such-shape', 'fixed'], /no fixed-overload scenario 'no-such-shape'; known: /],
    [['sp-32x32', 'high'], /LOAD: 'high' is not a positive fraction/],
    [['sp-32x32', '0.7', '0'], /gateways: '0' is not a whole number >= 1/],
    [['sp-32x32'], /SHAPE and LOAD are required/],
  ] as const) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.match(r.stderr, /^usage: node --import tsx bench\/routing\/placements\.ts/m);
  }
});
