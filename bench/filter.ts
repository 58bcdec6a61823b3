// npm run bench:filter [-- --json] [--quick]
// Times the filter's own work per request inside our proxy-wasm host (V8, as
// Envoy's default engine): every hook of a request, summed, from the host's
// clock around each call into the module. Prompts of 1 KB to 400 KB against
// 3 to 256 replicas, with a live control-plane state so every scorer runs.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost } from '../host/index.js';
import { StateServer } from './stateServer.js';
import type { ReplicaState } from '../control-plane/stateWire.js';

const WASM = fileURLToPath(new URL('../plugin/prefix-router.wasm', import.meta.url));
const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const PROMPT_BYTES = [1024, 8192, 65536, 409600];
const REPLICA_COUNTS = [3, 16, 64, 256];
/** Envoy hands a body to filters in chunks of about this size. */
const CHUNK = 16384;

function words(seed: number, n: number): string {
  let x = seed >>> 0 || 1;
  const w = ['the', 'model', 'replica', 'cache', 'prefix', 'token', 'system', 'prompt', 'answer', 'question', 'router', 'envoy'];
  const out: string[] = [];
  let len = 0;
  while (len < n) {
    x ^= x << 13; x >>>= 0; x ^= x >> 17; x ^= x << 5; x >>>= 0;
    const s = w[x % w.length];
    out.push(s);
    len += s.length + 1;
  }
  return out.join(' ').slice(0, n);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function runCase(promptBytes: number, replicas: number): Promise<{ p50Us: number; p99Us: number }> {
  const reps: ReplicaState[] = [];
  for (let i = 0; i < replicas; i++) {
    reps.push({ address: `10.${(i >> 8) & 255}.${i & 255}.1:8000`, ready: true, metricsKnown: true, waiting: i % 5, running: 8 + (i % 7), kvUsage: (i % 10) / 10, kvCapacityTokens: 150000, metricsAgeMs: 20 });
  }
  const cp = new StateServer({ version: 1n, weights: { prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, replicas: reps });
  const cpUrl = await cp.listen();
  const host = await ProxyWasmHost.create({
    wasm: readFileSync(WASM), workers: 2, logLevel: 'warn',
    pluginConfig: JSON.stringify({ controlPlane: { cluster: 'prefix_router_control_plane', longPollMs: 1000 } }),
    clusters: { prefix_router_control_plane: cpUrl },
  });
  try {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const s = host.newStream({});
      s.requestHeaders([[':method', 'GET'], [':path', '/v1/models'], [':authority', 'gw']], true);
      const ok = s.requestHeaderList().some(([k]) => k === 'x-gateway-destination-endpoint');
      s.complete();
      if (ok) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    // 32 shared system prompts, each request one of them plus its own question.
    const groups = Array.from({ length: 32 }, (_, g) => words(g + 1, Math.max(0, promptBytes - 200)));
    const requests = quick ? 200 : promptBytes >= 65536 ? 600 : 3000;
    const warmup = Math.min(200, requests / 4);
    const times: number[] = [];
    for (let i = 0; i < requests + warmup; i++) {
      const prompt = groups[i % groups.length] + ' ' + words(100000 + i, 200 - 1);
      const body = new TextEncoder().encode(JSON.stringify({ model: 'Qwen/Qwen2.5-3B-Instruct', prompt, max_tokens: 64 }));
      const s = host.newStream({ worker: i % 2 });
      s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['content-type', 'application/json'], ['content-length', String(body.length)]], false);
      for (let o = 0; o < body.length; o += CHUNK) s.requestBody(body.subarray(o, Math.min(body.length, o + CHUNK)), o + CHUNK >= body.length);
      s.responseHeaders([[':status', '200']], false);
      s.complete();
      if (i >= warmup) times.push(Number(s.wasmNs) / 1000);
    }
    times.sort((a, b) => a - b);
    return { p50Us: +percentile(times, 0.5).toFixed(2), p99Us: +percentile(times, 0.99).toFixed(2) };
  } finally {
    await host.close();
    await cp.close();
  }
}

const cases: Array<{ promptBytes: number; replicas: number; p50Us: number; p99Us: number }> = [];
for (const promptBytes of PROMPT_BYTES) {
  for (const replicas of REPLICA_COUNTS) {
    const r = await runCase(promptBytes, replicas);
    cases.push({ promptBytes, replicas, ...r });
    if (!json) console.log(`${String(promptBytes).padStart(7)} B prompt, ${String(replicas).padStart(3)} replicas: p50 ${r.p50Us.toFixed(1).padStart(8)} us   p99 ${r.p99Us.toFixed(1).padStart(8)} us`);
  }
}
const wasmBytes = statSync(WASM).size;
if (json) console.log(JSON.stringify({ wasmBytes, cases }));
else console.log(`module: ${wasmBytes} bytes\ntargets: p99 <= 20 us at 8 KB / 16 replicas; <= 1000 us at 400 KB / 256 replicas; module <= 100 KB`);
