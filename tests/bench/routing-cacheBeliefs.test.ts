// Smoke run of bench/routing/cacheBeliefs.ts (the router's cache beliefs against the engines'):
// a small tight-KV run through one gateway, through two, and the precise bound; bad arguments refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/routing/cacheBeliefs.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

test('cacheBeliefs: beliefs against the engines per layout, on the same arrivals', () => {
  const r = run('sp-32x32-tight-kv', '0.5', '1/1,2/1,precise', '0.1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^sp-32x32-tight-kv at 50% \(\d+ requests/m);
  for (const name of ['prefix-router/1gw-1w', 'prefix-router/2gw-1w', 'precise']) assert.match(r.stdout, new RegExp(`^${name}: TTFT p50 \\d+ p95 \\d+ ms, hit [\\d.]+%`, 'm'));
  const rates = [...r.stdout.matchAll(/engines (\d+) tokens, as the router counts (\d+)/g)];
  assert.equal(rates.length, 3);
  for (const [, engines] of rates) assert.ok(Number(engines) > 0, r.stdout);
  assert.match(r.stdout, /later requests of a group with no holder found: \d+ of \d+/);
  const moved = [...r.stdout.matchAll(/sent off the replica holding most of the prompt: (\d+); believing the pick held as much: (\d+) \((\d+) at or past p95\), not: (\d+) \((\d+);/g)];
  assert.equal(moved.length, 3, r.stdout);
  for (const [, all, stale, staleSlow, copied, copiedSlow] of moved) {
    assert.equal(Number(stale) + Number(copied), Number(all));
    assert.ok(Number(staleSlow) <= Number(stale) && Number(copiedSlow) <= Number(copied));
  }
});

test('cacheBeliefs: an unknown shape and a malformed layout are refused', () => {
  const shape = run('no-such-shape', '0.5');
  assert.notEqual(shape.status, 0);
  assert.match(shape.stderr, /no ladder shape 'no-such-shape'/);
  const layout = run('sp-32x32', '0.5', '2x1');
  assert.notEqual(layout.status, 0);
  assert.match(layout.stderr, /a layout is gateways\/workers, both at least 1, or precise, got '2x1'/);
});
