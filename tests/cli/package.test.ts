// The package as a user gets it: `npx prefix-router` runs the bundle as a program, and the
// dependencies install on the Node version package.json's engines and CI use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { bin: Record<string, string>; engines: { node: string } };

test('the bin is a program: #! line, executable, runs without naming node', () => {
  const bin = `${root}${pkg.bin['prefix-router']}`;
  assert.ok(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n'), `${bin} (built by npm run build) starts with #!/usr/bin/env node`);
  accessSync(bin, constants.X_OK);
  const r = spawnSync(bin, ['--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: prefix-router <command>/);
});

test('every locked dependency supports this Node version: npm reports no EBADENGINE', () => {
  assert.match(pkg.engines.node, /^>=\s*20\b/);
  const r = spawnSync('npm', ['ci', '--dry-run', '--no-audit', '--no-fund'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('EBADENGINE'));
  assert.deepEqual(complaints, []);
});
