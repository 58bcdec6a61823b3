import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { runWeightsCli } from '../../control-plane/weightsCli.js';
import { startControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';

/** Runs the CLI capturing console output. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try {
    const code = await runWeightsCli(args, env);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log; console.error = error;
  }
}

test('weights get / set --profile / set numbers / profiles against a running control plane', async () => {
  const cp = await startControlPlane({ replicas: ['10.0.0.1:8000'], scrapeIntervalMs: 1000, scrapeTimeoutMs: 100, stalenessMs: 60_000, token: 'tkn', logger: memoryLogger() });
  const dir = mkdtempSync(join(tmpdir(), 'cp-cli-'));
  try {
    let r = await run(['get', '--url', cp.url]);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).prefix, 3);
    r = await run(['set', '--profile', 'latency', '--url', cp.url], { PREFIX_ROUTER_API_TOKEN: 'tkn' });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(cp.state().weights, { prefix: 5, queue: 1, kvCache: 1, inflight: 1 });
    writeFileSync(join(dir, 'token'), 'tkn\n');
    r = await run(['set', '--prefix', '2', '--queue', '4', '--kv', '0.5', '--url', cp.url, '--token-file', join(dir, 'token')]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(cp.state().weights, { prefix: 2, queue: 4, kvCache: 0.5, inflight: 1 });
    r = await run(['profiles', '--url', cp.url]);
    assert.equal(r.code, 0);
    assert.ok(JSON.parse(r.out).profiles.throughput);
    // Refusals from the server are shown with their status, and the state is unchanged.
    r = await run(['set', '--profile', 'latency', '--url', cp.url], { PREFIX_ROUTER_API_TOKEN: 'wrong' });
    assert.equal(r.code, 1);
    assert.match(r.err, /401: invalid token/);
    r = await run(['set', '--profile', 'nope', '--url', cp.url], { PREFIX_ROUTER_API_TOKEN: 'tkn' });
    assert.match(r.err, /400: unknown profile/);
    assert.deepEqual(cp.state().weights, { prefix: 2, queue: 4, kvCache: 0.5, inflight: 1 });
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('weights CLI: local errors are clear and exit 2; unreachable control plane exits 1', async () => {
  assert.equal((await run(['--help'])).code, 0);
  for (const [args, re] of [
    [[], /missing action/], [['frobnicate'], /unknown action/], [['set'], /nothing to set/],
    [['set', '--prefix', 'abc'], /--prefix must be a finite number/], [['set', '--kv=-1'], /--kv must be >= 0/],
    [['set', '--prefix', '-1'], /--prefix must be >= 0 \(got -1\)/], [['set', '--queue', '-.5', '--kv', '1'], /--queue must be >= 0/],
    [['set', '--inflight', '2e6'], /--inflight must be <= 1000000/],
    [['set', '--profile', 'latency', '--prefix', '1'], /not both/], [['get', '--bogus'], /Unknown option/],
    [['get', '--url', 'not a url'], /is not a URL/],
  ] as Array<[string[], RegExp]>) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, re, args.join(' '));
  }
  // A port nobody listens on (fetch itself refuses well-known ports like 1).
  const s = net.createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  const r = await run(['get', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`cannot reach the control plane at http://127.0.0.1:${port}: ECONNREFUSED`));
});
