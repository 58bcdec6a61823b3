// Smoke run of bench/routing/splitTail.ts (the split entry points' tail breakdown): a small
// conversation run with two gateways, and an unknown shape refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/routing/splitTail.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

test('splitTail: one entry point against two gateways on the same arrivals, the tail broken down', () => {
  const r = run('conversation', '1', '0.05', '1', '2');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^conversation at 70% \(\d+ requests/m);
  assert.match(r.stdout, /^prefix-router\/1w-2gw: TTFT p50 \d+ p95 \d+ ms, hit [\d.]+%/m);
  assert.match(r.stdout, /^all later turns: \d+ of \d+ came through another gateway/m);
  assert.match(r.stdout, /^ {2}turn 1: \d+ requests/m);
});

test('splitTail: a shape that is not a session shape is refused', () => {
  const r = run('no-such-shape', '1', '0.05');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /no session shape 'no-such-shape'/);
});
