// cli/build.mjs: a step runs only when its outputs are missing or older than its inputs, says what it
// does, and --then ... --help builds nothing that exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync, utimesSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const OUTPUTS = ['build/prefix-router.wasm', 'plugin/prefix-router.wasm', 'dist/prefix-router.js'];
const mtimes = () => OUTPUTS.map((p) => statSync(`${root}${p}`).mtimeMs);

function build(...args: string[]): string {
  const r = spawnSync(process.execPath, ['cli/build.mjs', ...args], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  return r.stdout;
}

test('nothing changed: every step is up to date and no output is rewritten', () => {
  build();
  const before = mtimes();
  const out = build();
  assert.deepEqual(out.trim().split('\n').map((l) => l.replace(/^build: .*: /, '')), ['up to date', 'up to date', 'up to date']);
  assert.deepEqual(mtimes(), before);
});

test('an edited input rebuilds its step only; --then ... --help runs the command without building', () => {
  build();
  const before = mtimes();
  const now = Date.now() / 1000;
  utimesSync(`${root}cli/prefix-router.ts`, now, now);
  const help = build('--then', process.execPath, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', '--', '--help');
  assert.equal(help.trim(), '["--help"]', 'the command ran with its arguments, and the build printed nothing');
  assert.deepEqual(mtimes(), before, '--help built nothing');
  const out = build();
  assert.match(out, /compiling the filter.*: up to date/);
  assert.match(out, /bundling the TypeScript side.*: done in/);
  const after = mtimes();
  assert.deepEqual(after.slice(0, 2), before.slice(0, 2), 'the filter was not rebuilt');
  assert.ok(after[2] > before[2], 'the bundle was');
});

test('a missing output is built even for --help (a fresh clone)', () => {
  build();
  rmSync(`${root}dist/prefix-router.js`);
  build('--then', process.execPath, '-e', '0', '--', '--help');
  statSync(`${root}dist/prefix-router.js`);
});
