import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { startReplicas, type RunningReplicas } from '../../simulator/server.js';
import { parseGatewayBenchArgs, parseReplicaList, percentiles, runGatewayBench, summary, writeGatewayReport } from '../../bench/gateway.js';
import { ROOT, scriptArgs } from '../tools/npmScript.js';

let sim: RunningReplicas;
let proxy: Server;
let gateway: string;
let outDir: string;

/** A trivial round-robin reverse proxy: request i goes to replica i mod n, streamed both ways. */
function roundRobinProxy(targets: { host: string; port: number }[]): Server {
  let next = 0;
  return createServer((req, res) => {
    const t = targets[next++ % targets.length]!;
    const up = request({ host: t.host, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
  });
}

before(async () => {
  sim = await startReplicas({ replicas: 3, basePort: 0, timeScale: 100 });
  proxy = roundRobinProxy(sim.replicas.map((r) => ({ host: r.host, port: r.port })));
  await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
  gateway = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  outDir = await mkdtemp(join(tmpdir(), 'bench-gateway-'));
});
after(async () => {
  proxy.closeAllConnections();
  await new Promise((ok) => proxy.close(ok));
  await sim.close();
  await rm(outDir, { recursive: true, force: true });
});

test('benchmark through a round-robin proxy: health, spread, throughput, percentiles, report files', async () => {
  const result = await runGatewayBench({
    gateway, replicas: sim.replicas.map((r) => r.url), out: outDir, timeoutMs: 60_000, requestTimeoutMs: 30_000,
    concurrency: 12, maxTokens: 4, progress: false,
  });
  assert.deepEqual(result.errors, []);
  assert.deepEqual({ ready: result.health.ready, total: result.health.total }, { ready: 3, total: 3 });
  assert.equal(result.model, 'Qwen/Qwen2.5-3B-Instruct');
  // round robin ignores the shared prefix: 10 sequential requests cover all 3 replicas
  assert.equal(result.prefixRouting.ok, 10);
  assert.equal(result.prefixRouting.distinctReplicas, 3);
  assert.deepEqual(Object.keys(result.prefixRouting.replicas), ['replica-0', 'replica-1', 'replica-2']);
  // the replicas' own usage shows the cache: a replica's second sighting of the prompt hits
  assert.equal(result.prefixRouting.cachedTokens.slice(0, 3).every((c) => c === 0), true);
  assert.ok(result.prefixRouting.cachedTokens.slice(3).every((c) => c > 0));
  assert.deepEqual(result.distribution, { 'replica-0': 5, 'replica-1': 5, 'replica-2': 5 });
  assert.equal(result.throughput.ok, 12);
  assert.equal(result.throughput.concurrency, 12);
  assert.ok(result.throughput.rps > 0);
  assert.ok(result.latencyMs.p50 <= result.latencyMs.p95 && result.latencyMs.p95 <= result.latencyMs.p99);
  assert.ok(result.ttftMs.p50 <= result.latencyMs.p50);
  assert.equal(result.samples.latencyMs.length, 12);

  const files = await writeGatewayReport(result, outDir);
  const saved = JSON.parse(await readFile(files.json, 'utf8'));
  assert.deepEqual(summary(saved), summary(result));
  const html = await readFile(files.html, 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.ok((html.match(/<svg /g) ?? []).length >= 5, 'inline charts');
  assert.doesNotMatch(html, /<script|src="http|href="http/, 'self-contained');
});

test('--json prints exactly the summary shape; the run writes its files', async () => {
  const out = join(outDir, 'cli');
  const child = spawn(process.execPath, [...scriptArgs('bench'), '--gateway', gateway, '--replicas', sim.replicas.map((r) => r.url).join(','), '--json', '--concurrency', '6', '--max-tokens', '2', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((ok) => child.on('close', ok));
  assert.equal(code, 0, stderr);
  const s = JSON.parse(stdout);
  assert.deepEqual(Object.keys(s), ['health', 'prefixRouting', 'distribution', 'throughput', 'latencyMs']);
  assert.deepEqual(s.health, { ready: 3, total: 3 });
  assert.equal(s.prefixRouting.requests, 10);
  assert.equal(s.throughput.concurrency, 6);
  assert.deepEqual(Object.keys(s.latencyMs), ['p50', 'p95', 'p99']);
  await readFile(join(out, 'result.json'), 'utf8');
  await readFile(join(out, 'report.html'), 'utf8');
});

test('a dead gateway gives failed counts and errors, not a crash; bad flags are rejected', async () => {
  const r = await runGatewayBench({ gateway: 'http://127.0.0.1:9', replicas: ['http://127.0.0.1:9'], out: outDir, timeoutMs: 20_000, requestTimeoutMs: 5_000, concurrency: 3, maxTokens: 1, progress: false });
  assert.deepEqual({ ready: r.health.ready, total: r.health.total }, { ready: 0, total: 1 });
  assert.equal(r.prefixRouting.ok, 0);
  assert.equal(r.throughput.failed, 3);
  assert.ok(r.errors.length > 0);
  assert.ok(Number.isNaN(r.latencyMs.p50));
  assert.throws(() => parseGatewayBenchArgs(['--gateway', 'http://10.0.0.1:8080']), /loopback/);
  assert.throws(() => parseGatewayBenchArgs([]), /--gateway/);
  assert.throws(() => parseGatewayBenchArgs(['--gateway', 'http://localhost:1', '--concurrency', '0']), /concurrency/);
});

test('percentiles use nearest rank; replica lists parse in the shapes a control plane may use', () => {
  const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.deepEqual([p.p50, p.p95, p.p99, p.min, p.max], [50, 95, 99, 1, 100]);
  assert.deepEqual(parseReplicaList({ replicas: [{ name: 'a', ready: true }, { address: '127.0.0.1:1', state: 'unready' }] }).map((r) => r.ready), [true, false]);
  assert.deepEqual(parseReplicaList(['x', 'y']).map((r) => r.replica), ['x', 'y']);
  assert.throws(() => parseReplicaList({ nope: 1 }), /expected an array/);
});
