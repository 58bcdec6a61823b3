// npm run bench:filter: the JSON it prints has the documented shape (speed itself is
// never asserted here), and bad flags are refused with a message, not a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ROOT, scriptArgs } from '../tools/npmScript.js';
const WASM = 'plugin/prefix-router.wasm';

function bench(args: string[]) {
  return spawnSync(process.execPath, [...scriptArgs('bench:filter'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
}

test('--json with --against, --api chat and --lines: one object, both modules timed on the same requests', () => {
  const r = bench(['--case', '1024x3', '--requests', '40', '--warmup', '10', '--api', 'chat', '--lines', '--against', WASM, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.wasmBytes > 0);
  assert.equal(out.cases.length, 1);
  const c = out.cases[0];
  assert.deepEqual([c.api, c.lines, c.promptBytes, c.replicas], ['chat', true, 1024, 3]);
  for (const v of [c.p50Us, c.p99Us, c.against.p50Us, c.against.p99Us]) assert.ok(Number.isFinite(v) && v > 0, JSON.stringify(c));
  assert.ok(c.p99Us >= c.p50Us && c.against.p99Us >= c.against.p50Us);
  assert.ok(c.fasterSharePct >= 0 && c.fasterSharePct <= 100);
  // A new state's cost on the next request of the worker VM that does not poll: a decode and an install.
  for (const v of [c.newStateUs, c.againstNewStateUs]) assert.ok(Number.isFinite(v) && v > 0, JSON.stringify(c));
});

test('bad flags are refused with exit 2 and say why', () => {
  for (const [args, why] of [
    [['--api', 'soap'], /--api must be completions or chat/],
    [['--against', '/nonexistent.wasm'], /--against \/nonexistent.wasm: no such file/],
    [['--against', WASM, '--breakdown'], /--against and --breakdown cannot be combined/],
    [['--case', '8k'], /--case must look like/],
  ] as Array<[string[], RegExp]>) {
    const r = bench(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});
