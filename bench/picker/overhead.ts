// What routing through the picker costs against running the filter in the proxy: the same
// requests, closed loop, to an upstream that answers at once (so the time is the routing path's),
// through (a) the embedded gateway running the filter (in-proxy) and (b) the embedded gateway as
// an ext_proc client of `prefix-router picker` (the proxy -> picker hop Envoy makes), and, when
// asked, (c) the same gateway in front of the inference extension's endpoint picker (gie-epp). Each
// gateway and picker runs as its own process (the built CLI; the gie-epp binary), so CPU per
// request is read per process from /proc/<pid>/stat.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { textOf } from '../routing/workloads.js';
import { startGieEpp, type RunningGieEpp } from './gieEpp.js';

export interface OverheadOptions {
  cli: string;
  wasm: string;
  seconds: number;
  warmupSeconds: number;
  concurrency: number;
  promptTokens: number;
  groups: number;
  /** Also measure this gie-epp binary on the picker path. */
  gieEpp?: string;
}

export interface PathResult {
  path: 'in-proxy' | 'picker' | 'gie-epp';
  requests: number;
  errors: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number };
  /** CPU per request, µs, of each process on the path (the gateway; the picker). */
  cpuUsPerRequest: Record<string, number>;
}

const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; } })();

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Starts the CLI with `args`; resolves with the child and its first stdout line. */
function launch(cli: string, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { child.kill(); reject(new Error(`${args[0]} did not start: ${err}`)); }, 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(t); resolve({ child, line: out.slice(0, nl) }); }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`${args[0]} exited with ${code}: ${err}`)); });
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((r) => { if (child.exitCode !== null) r(); else { child.once('exit', () => r()); child.kill('SIGTERM'); } });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

/** An idle vLLM's gauges, which gie-epp scrapes from each endpoint and scores on. */
const IDLE_VLLM_METRICS = [
  'vllm:num_requests_running{model_name="m"} 0',
  'vllm:num_requests_waiting{model_name="m"} 0',
  'vllm:kv_cache_usage_perc{model_name="m"} 0',
  'vllm:cache_config_info{block_size="16",num_gpu_blocks="8400"} 1',
  '',
].join('\n');

/** An upstream that answers every request at once with a small completion (and /metrics as an idle vLLM). */
async function instantUpstream(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(IDLE_VLLM_METRICS);
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[{"text":"ok"}]}');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { endpoint: `127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

/** Closed-loop load on `url` for `seconds`; latencies in ms. */
async function load(url: string, o: OverheadOptions, seconds: number, onRequest?: () => void): Promise<{ latencies: number[]; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const systems = Array.from({ length: o.groups }, (_, g) => textOf(100 + g, o.promptTokens));
  const latencies: number[] = [];
  let errors = 0, i = 0;
  const end = performance.now() + seconds * 1000;
  const one = (body: string) => new Promise<boolean>((resolve) => {
    const req = http.request(`${url}/v1/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.end(body);
  });
  const worker = async () => {
    while (performance.now() < end) {
      const n = i++;
      const body = JSON.stringify({ model: 'm', prompt: `${systems[n % o.groups]} q${n}`, max_tokens: 1 });
      const t = performance.now();
      const ok = await one(body);
      if (ok) latencies.push(performance.now() - t); else errors++;
      onRequest?.();
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  agent.destroy();
  return { latencies, errors };
}

async function measure(path: PathResult['path'], url: string, processes: Record<string, number>, o: OverheadOptions): Promise<PathResult> {
  await load(url, o, o.warmupSeconds);
  const before = Object.fromEntries(Object.entries(processes).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const { latencies, errors } = await load(url, o, o.seconds);
  const n = latencies.length + errors;
  const cpuUsPerRequest = Object.fromEntries(Object.entries(processes).map(([k, pid]) => [k, n ? ((cpuSeconds(pid) - before[k]!) * 1e6) / n : NaN]));
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1);
  return { path, requests: latencies.length, errors, latencyMs: { p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p99: percentile(latencies, 0.99), mean }, cpuUsPerRequest };
}

/** Runs the paths, one after the other, against one instant upstream. */
export async function runOverhead(o: OverheadOptions): Promise<PathResult[]> {
  const upstream = await instantUpstream();
  const config = JSON.stringify({ replicas: [upstream.endpoint], debugHeaders: false });
  const started: ChildProcess[] = [];
  let gie: RunningGieEpp | null = null;
  try {
    const inProxy = await launch(o.cli, ['gateway', '--wasm', o.wasm, '--config', config, '--port', '0', '--workers', '1']);
    started.push(inProxy.child);
    const inProxyUrl = /listening on (\S+)/.exec(inProxy.line)![1]!;
    const a = await measure('in-proxy', inProxyUrl, { gateway: inProxy.child.pid! }, o);
    await stop(inProxy.child);
    const picker = await launch(o.cli, ['picker', '--wasm', o.wasm, '--config', config, '--port', '0', '--health-port', '0', '--metrics-port', '0', '--workers', '1']);
    started.push(picker.child);
    const pickerAddress = /ext_proc on (\S+),/.exec(picker.line)![1]!;
    const gw = await launch(o.cli, ['gateway', '--picker', pickerAddress, '--port', '0']);
    started.push(gw.child);
    const gwUrl = /listening on (\S+)/.exec(gw.line)![1]!;
    const b = await measure('picker', gwUrl, { gateway: gw.child.pid!, picker: picker.child.pid! }, o);
    await stop(gw.child);
    await stop(picker.child);
    if (!o.gieEpp) return [a, b];
    gie = await startGieEpp(o.gieEpp, [upstream.endpoint]);
    const gieGw = await launch(o.cli, ['gateway', '--picker', gie.address, '--port', '0']);
    started.push(gieGw.child);
    const c = await measure('gie-epp', /listening on (\S+)/.exec(gieGw.line)![1]!, { gateway: gieGw.child.pid!, picker: gie.pid }, o);
    return [a, b, c];
  } finally {
    for (const c of started) await stop(c);
    await gie?.close();
    await upstream.close();
  }
}
