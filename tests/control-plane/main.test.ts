import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runControlPlaneCli } from '../../control-plane/main.js';

const CLI = fileURLToPath(new URL('../../cli/prefix-router.ts', import.meta.url));

test('control-plane --help and bad flags', async () => {
  const logs: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => { logs.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { logs.push(a.join(' ')); };
  try {
    assert.equal(await runControlPlaneCli(['--help']), 0);
    assert.match(logs.join('\n'), /--inference-pool NAME/);
    assert.equal(await runControlPlaneCli(['--replicas', '10.0.0.1:8000', '--scrape-interval-ms', '1']), 2);
    assert.match(logs.join('\n'), /scrapeIntervalMs \(--scrape-interval-ms\): must be >= 10/);
  } finally {
    console.log = log; console.error = error;
  }
});

test('the CLI serves, logs JSON lines, and shuts down on SIGTERM', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'control-plane', '--replicas', '127.0.0.1:1', '--port', '0', '--staleness-ms', '500', '--scrape-timeout-ms', '100'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PREFIX_ROUTER_API_TOKEN: 'secret-token-value' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', () => {
        const m = /"msg":"control plane listening","url":"([^"]+)"/.exec(stderr);
        if (m) resolve(m[1]);
      });
      child.once('exit', (c) => reject(new Error(`exited ${c}: ${stderr}`)));
    });
    const r = await fetch(`${url}/healthz`);
    assert.equal(r.status, 200);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
    const lines = stderr.trim().split('\n');
    for (const l of lines) {
      const o = JSON.parse(l);
      assert.ok(o.time && o.level && o.msg, l);
    }
    assert.ok(!stderr.includes('secret-token-value'), 'token never logged');
    assert.match(stderr, /"apiToken":"env PREFIX_ROUTER_API_TOKEN"/);
  } finally {
    child.kill('SIGKILL');
  }
});
