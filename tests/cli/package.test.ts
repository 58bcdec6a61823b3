// The package as a user gets it: `npx prefix-router` runs the bundle as a program, and the
// dependencies install on the Node version package.json's engines and CI use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../../cli/serverNodeFlags.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { bin: Record<string, string>; engines: { node: string } };

test('the bin is a program: #! line with the server V8 flags, executable, runs without naming node', () => {
  const bin = `${root}${pkg.bin['prefix-router']}`;
  const shebang = `#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}\n`;
  assert.ok(readFileSync(bin, 'utf8').startsWith(shebang), `${bin} (built by npm run build) starts with ${shebang}`);
  accessSync(bin, constants.X_OK);
  const r = spawnSync(bin, ['--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: prefix-router <command>/);
});

test('npm start and the image start the server processes with the V8 flags of cli/serverNodeFlags.ts', () => {
  const scripts = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;
  assert.ok(scripts.start!.endsWith(`--then node ${SERVER_NODE_FLAGS.join(' ')} dist/prefix-router.js start`), scripts.start);
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(`${root}Dockerfile`, 'utf8'));
  assert.ok(entry, 'Dockerfile has an exec-form ENTRYPOINT');
  assert.deepEqual(JSON.parse(entry![1]!), ['node', ...SERVER_NODE_FLAGS, '/app/dist/prefix-router.js']);
});

test('every locked dependency supports the oldest Node version package.json allows', () => {
  // semver as the npm beside this node ships it (the project does not depend on it); read-only:
  // running npm here would find node_modules/.bin/npm first, an npm 6 that has no ci --dry-run.
  const npmDir = join(dirname(realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm');
  const semver = createRequire(join(npmDir, 'package.json'))('semver') as {
    minVersion(range: string): { version: string } | null; satisfies(v: string, range: string): boolean;
  };
  const floor = semver.minVersion(pkg.engines.node)!.version;
  assert.ok(semver.satisfies(floor, '20'), `engines.node ${pkg.engines.node} allows Node 20, which CI and the Dockerfiles use`);
  const lock = JSON.parse(readFileSync(`${root}package-lock.json`, 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } }> };
  const refusing = Object.entries(lock.packages)
    .filter(([, p]) => typeof p.engines?.node === 'string' && !semver.satisfies(floor, p.engines.node))
    .map(([name, p]) => `${name}@${p.version} wants node ${p.engines!.node}`);
  assert.deepEqual(refusing, [], `npm ci on Node ${floor} would warn EBADENGINE for these`);
  for (const file of ['Dockerfile']) {
    for (const from of readFileSync(`${root}${file}`, 'utf8').matchAll(/^FROM node:(\d+)/gm)) assert.equal(from[1], '20', `${file}: FROM node:${from[1]}`);
  }
});
